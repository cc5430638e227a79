"""``build_run``: model, wrapper, optimizer, schedule and step from a job and its resolved runtime.

The one place a run is assembled (nanoGPT and torchtitan build their trainer once): the training
loop, ``validate``, the batch sweep, the scaling benchmark and the train-step benchmark all call
it, so what they measure is what ``mmscale train`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmscale.errors import ConfigError
from mmscale.host_heap import release_host_heap
from mmscale.model.multimodal import MultimodalModel
from mmscale.train.config import TrainJob
from mmscale.train.contrastive import GatherContrastRows
from mmscale.train.distributed import wrap_model
from mmscale.train.optim import build_scheduler, build_train_optimizer, cast_weights
from mmscale.train.runtime import Runtime
from mmscale.train.step import TrainStep
from mmscale.train.step_graph import GraphUnsupported, GraphedTrainStep, graph_train_step


@dataclass
class Run:
    model: MultimodalModel  # the single-device model (weights in the run's dtype)
    wrapped: nn.Module  # what trains: the model, DDP(model) or the FSDP2-sharded model
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    step: TrainStep | GraphedTrainStep


def build_run(job: TrainJob, runtime: Runtime, *, schedule: bool = True, compile_dynamic: bool | None = None,
              graph_warmup_steps: int = 3) -> Run:
    """Seeded model -> weights' dtype -> global ITC negatives under torchrun -> wrap -> optimizer ->
    schedule -> step (graphed if asked).

    ``schedule=False`` keeps the learning rate constant (benchmarks time steps, not a schedule).
    ``compile_dynamic=False``: one static graph per batch shape (benchmarks that run a few sizes)."""
    cfg = job.train
    torch.manual_seed(cfg.seed)
    model = cast_weights(model_to_device(MultimodalModel(job.model), runtime.device), runtime)
    if runtime.env.active:  # ITC's negatives: every process's rows, as one process with the whole batch
        model.gather_contrast_rows = GatherContrastRows(job.check_world(runtime.env.world_size), runtime.env)
    wrapped = wrap_model(model, runtime.strategy, runtime.env, runtime.device,
                         param_dtype=runtime.precision.sharded_param_dtype, bucket_cap_mb=runtime.ddp_bucket_mb)
    optimizer = build_train_optimizer(wrapped, cfg, runtime)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio) if schedule else None
    step = TrainStep(wrapped, optimizer, scheduler, runtime.precision, compile=runtime.compile,
                     compile_dynamic=compile_dynamic, grad_accum=cfg.grad_accum,
                     checkpointing=cfg.activation_checkpointing, grad_clip=cfg.grad_clip)
    if runtime.step_graph:
        try:
            step = graph_train_step(step, runtime.device, distributed=runtime.env.active,
                                    warmup_steps=graph_warmup_steps)
        except GraphUnsupported as exc:
            raise ConfigError("train.step_graph", str(exc)) from None
    return Run(model, wrapped, optimizer, scheduler, step)


def model_to_device(model: nn.Module, device: torch.device | str) -> nn.Module:
    """``model.to(device)``, then the host copy it leaves behind goes back to the OS: how much of it
    glibc kept resident varied from run to run, which one process training several runs (validate's
    datascale) read as host memory growing with N."""
    model = model.to(device)
    if torch.device(device).type != "cpu":  # on the CPU the host copy is the model
        release_host_heap()
    return model
