"""``TrainConfig`` and ``TrainJob`` (data + model + train), loaded with ``mmscale.config.load_config``.

``train.batch_size`` is the global batch of one optimizer step: it is split over the processes
of a ``torchrun`` job and then over ``grad_accum`` micro-batches, so the same config trains the
same model on 1 or N GPUs. Fields that say ``auto`` are resolved once per run, from the device
and the world size, by ``mmscale.train.runtime.resolve_runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmscale.data.config import DataConfig
from mmscale.errors import ConfigError
from mmscale.model.config import ModelConfig
from mmscale.train.trackers import check_names

Auto = Literal["auto"]


@dataclass
class TrainConfig:
    steps: int = 1000
    """Optimizer steps to run (the data is cycled in epochs as needed)."""
    time_limit_s: float = 0.0
    """Stop after this many seconds of training (0 = no limit); evaluation still runs."""
    batch_size: int = 32
    """Global samples per optimizer step, over all processes and accumulation micro-batches."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (gradients summed before the update)."""
    lr: float = 1e-4
    """Peak AdamW learning rate, reached after warmup."""
    min_lr_ratio: float = 0.1
    """Cosine decay floor as a fraction of ``lr`` (1 keeps the rate flat after warmup)."""
    warmup_steps: int = 100
    """Linear warmup from 0 to ``lr`` over this many optimizer steps."""
    weight_decay: float = 0.05
    """AdamW decoupled weight decay on weight matrices (not on biases, norms, the logit scale)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 = no clipping)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """``auto``: bf16 on CUDA, fp32 on CPU; ``fp16`` uses a gradient scaler."""
    weights: Literal["auto", "fp32", "bf16"] = "auto"
    """``bf16``: the model in bf16 with fp32 copies in AdamW; ``fp32``: fp32 weights under autocast.
    ``auto``: bf16 where the precision is bf16, there is no FSDP and no gradient accumulation."""
    compile: bool | Auto = "auto"
    """``torch.compile`` the model; ``auto``: on CUDA."""
    step_graph: bool | Auto = "auto"
    """Capture the whole step (forward, backward, clipping, AdamW) as one CUDA graph and replay it;
    ``auto``: in one CUDA process without fp16 or gradient accumulation."""
    flat_update: bool | Auto = "auto"
    """Keep bf16 weights, fp32 copies, AdamW moments and gradients in flat buffers, updated in a few
    long kernels; ``auto``: with bf16 weights in one process."""
    activation_checkpointing: bool = False
    """Recompute encoder blocks in backward: less memory for about a third more compute."""
    parallel: Literal["auto", "none", "ddp", "fsdp"] = "auto"
    """Multi-process strategy under torchrun: ``auto`` = DDP when WORLD_SIZE > 1; ``fsdp`` = FSDP2."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto``: CUDA when available."""
    seed: int = 0
    """Seed of weights, hard-negative sampling and dropout."""
    out_dir: str = "runs/train"
    """Where config.json, metrics.jsonl, monitor.jsonl, the trackers' files, the checkpoint and result.json
    go (checkpoint.pt from one process, a sharded checkpoint/ folder from a torchrun job)."""
    checkpoint_every: int = 0
    """Write a checkpoint every K optimizer steps (0 = only at the end)."""
    resume: bool | Auto = False
    """Continue from the checkpoint in ``out_dir`` (model, optimizer, scheduler, RNG, data position);
    ``auto``: when there is one. A torchrun restart attempt always continues from it."""
    log_every: int = 10
    """Optimizer steps per metrics row and log line (each row costs one device sync)."""
    eval_every: int = 0
    """Run retrieval eval every K steps (0 = only at the end)."""
    eval_samples: int = 1000
    """Validation samples used for retrieval recall (the first N of the val split)."""
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Where the metrics go besides metrics.jsonl: any of ``tensorboard``, ``mlflow``, ``wandb``
    (each its own extra); ``[]``: metrics.jsonl alone."""

    def validate(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}", f"must be >= 1, got {getattr(self, name)}")
        for name in ("time_limit_s", "warmup_steps", "checkpoint_every", "eval_every", "grad_clip", "weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}", f"must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError("train.lr", f"must be > 0, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("train.min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                "train.batch_size", f"{self.batch_size} is not divisible by train.grad_accum={self.grad_accum}"
            )
        check_names(self.trackers)


@dataclass
class TrainJob:
    data: DataConfig = field(default_factory=DataConfig)
    """Where the samples are and how they become model input."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Encoders, fusion and losses."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Loop, precision, parallelism, checkpoints, metrics."""

    def validate(self) -> None:
        if self.data.image_size != self.model.image_size:
            raise ConfigError(
                "model.image_size", f"{self.model.image_size} differs from data.image_size={self.data.image_size}"
            )
        if self.data.max_text_len > self.model.max_text_len:
            raise ConfigError(
                "data.max_text_len",
                f"{self.data.max_text_len} exceeds model.max_text_len={self.model.max_text_len}",
            )

    def check_world(self, world_size: int) -> int:
        """Samples per process per micro-batch; names the field when the batch cannot be split."""
        per_step = self.train.batch_size
        if per_step < world_size:
            raise ConfigError("train.batch_size", f"{per_step} is smaller than the {world_size} processes")
        if per_step % (world_size * self.train.grad_accum):
            raise ConfigError(
                "train.batch_size",
                f"{per_step} is not divisible by {world_size} processes x train.grad_accum={self.train.grad_accum}",
            )
        return per_step // (world_size * self.train.grad_accum)
