"""The run's resolved runtime: device, world, precision and every ``auto`` switch, decided once.

Training, validation and every benchmark call ``resolve_runtime`` and then ``build_run``
(``mmscale.train.build``); nothing else resolves a device or a precision. A switch the user set
to ``true`` that cannot work here is refused with the field and the reason; ``auto`` turns on
only what works here, so the defaults run everywhere and are fastest on one CUDA GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmscale.errors import ConfigError
from mmscale.train.config import TrainConfig
from mmscale.train.distributed import DistEnv, resolve_device
from mmscale.train.precision import Precision

EAGER_DDP_BUCKET_MB = 25  # torch's default
COMPILED_DDP_BUCKET_MB = 400  # fewer compiled subgraphs per step: each bucket is one


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    env: DistEnv
    precision: Precision  # carries the weights' dtype: fp32 | bf16
    compile: bool
    step_graph: bool
    flat_update: bool
    strategy: str  # none | ddp | fsdp

    @property
    def ddp_bucket_mb(self) -> int:
        return COMPILED_DDP_BUCKET_MB if self.compile else EAGER_DDP_BUCKET_MB

    def describe(self) -> str:
        """One line for the console and the run's result: what this run really does."""
        parts = [f"{self.device.type} x{self.env.world_size}", self.precision.label,
                 "compiled" if self.compile else "eager"]
        parts += [name for name, on in (("step graph", self.step_graph), ("flat update", self.flat_update)) if on]
        if self.strategy != "none":
            parts.append(self.strategy)
        return ", ".join(parts)

    def as_dict(self) -> dict:
        return {"device": str(self.device), "world_size": self.env.world_size, "precision": self.precision.name,
                "weights": self.precision.weights, "compile": self.compile, "step_graph": self.step_graph,
                "flat_update": self.flat_update, "strategy": self.strategy}


def resolve_runtime(cfg: TrainConfig, env: DistEnv | None = None) -> Runtime:
    """Turn ``cfg``'s ``auto`` fields into decisions for this device and world."""
    env = env or DistEnv()
    device = resolve_device(cfg.device, env)
    cuda = device.type == "cuda"
    strategy = _strategy(cfg.parallel, env)
    precision_name = cfg.precision if cfg.precision != "auto" else ("bf16" if cuda else "fp32")

    bf16_blocker = ("precision" if precision_name != "bf16" else "parallel" if strategy == "fsdp"
                    else "grad_accum" if cfg.grad_accum > 1 else None)
    if cfg.weights == "bf16" and bf16_blocker:
        raise ConfigError("train.weights", f"bf16 weights with fp32 copies need bf16 compute, no FSDP "
                          f"(it keeps its own copies) and grad_accum=1; this run has train.{bf16_blocker}="
                          f"{getattr(cfg, bf16_blocker)}")
    weights = cfg.weights if cfg.weights != "auto" else ("fp32" if bf16_blocker else "bf16")
    precision = Precision(precision_name, device.type, weights)

    compiled = cuda if cfg.compile == "auto" else cfg.compile

    graph_blocker = ("device" if not cuda else "world_size" if env.active else "grad_accum" if cfg.grad_accum > 1
                     else "precision" if precision_name == "fp16" else None)
    if cfg.step_graph is True and graph_blocker:
        value = device.type if graph_blocker == "device" else (
            env.world_size if graph_blocker == "world_size" else getattr(cfg, graph_blocker))
        raise ConfigError("train.step_graph", f"captures one CUDA process with grad_accum=1 and no fp16 "
                          f"scaler; this run has {graph_blocker}={value}")
    step_graph = (graph_blocker is None) if cfg.step_graph == "auto" else cfg.step_graph

    flat_blocker = ("weights" if weights != "bf16" else "world_size" if env.active else None)
    if cfg.flat_update is True and flat_blocker:
        value = weights if flat_blocker == "weights" else env.world_size
        raise ConfigError("train.flat_update", f"updates the fp32 copies of bf16 weights in one process; "
                          f"this run has {flat_blocker}={value}")
    flat_update = (flat_blocker is None) if cfg.flat_update == "auto" else cfg.flat_update
    return Runtime(device, env, precision, compiled, step_graph, flat_update, strategy)


def _strategy(parallel: str, env: DistEnv) -> str:
    if parallel == "auto":
        return "ddp" if env.active else "none"
    if not env.active:
        return "none"  # one process: nothing to wrap (torchrun --nproc-per-node N trains on N)
    return parallel


def apply_process_settings(runtime: Runtime) -> None:
    """Process-wide settings every run of this build uses: TF32 for fp32 matmuls on CUDA."""
    if runtime.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
