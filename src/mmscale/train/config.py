"""``TrainConfig`` and ``TrainJob`` (data + model + train), loaded with ``mmscale.config.load_config``.

``train.batch_size`` is the global batch of one optimizer step: it is split over the processes
of a ``torchrun`` job and then over ``grad_accum`` micro-batches, so the same config trains the
same model on 1 or N GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmscale.data.config import DataConfig
from mmscale.errors import ConfigError
from mmscale.model.config import ModelConfig


EAGER_DDP_BUCKET_MB = 25  # torch's default
COMPILED_DDP_BUCKET_MB = 400  # fewer compiled subgraphs per step (train.ddp_bucket_mb)


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
    """Cosine decay floor as a fraction of ``lr``."""
    warmup_steps: int = 100
    """Linear warmup from 0 to ``lr`` over this many optimizer steps."""
    weight_decay: float = 0.05
    """AdamW decoupled weight decay (not applied to biases, norms, embeddings' scale)."""
    beta2: float = 0.98
    """AdamW second-moment decay (0.98 is the CLIP/BLIP choice for stable contrastive training)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 = no clipping)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """``auto``: bf16 autocast on CUDA, fp32 on CPU (bf16 under ``weights=bf16``); ``fp16`` uses a
    gradient scaler."""
    compile: bool = False
    """Wrap the model in ``torch.compile``."""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"] = "default"
    """``torch.compile`` mode (needs ``compile``). ``reduce-overhead`` replays the step's kernels
    from CUDA graphs: one launch instead of hundreds, so the training thread holds the GIL less.
    Measured, it did not pay: on an H100 with synthetic batches 1,657 against 1,620 samples/s for
    ``default`` (within the spread); on an H200 from JPEG files with ``data.decode=gpu``, 1,751
    against 1,832 in steady state (``benchmarks/decode_auto.py --paths gpu,gpu_graphs``). Its
    data-wait share reads high (62%) and is not comparable: the replayed step returns before the
    device is done, and the wait for the next batch then holds device time (BENCHMARKS.md)."""
    compile_tuning: bool = False
    """Inductor's coordinate-descent tuning (needs ``compile``): each generated kernel's block sizes
    are timed and the fastest kept (``mmscale.train.compile_tuning``). Pays for long runs only:
    measured (``base``, batch 128, ``weights=bf16 step_graph=true``, one H200, BENCHMARKS.md)
    1.034x the untuned step (2,133 against 2,062 samples/s), after 368 s of compile and tuning
    against 46 s: the 2 ms a step repays the extra compile after about 158,000 steps."""
    compile_mix_order_reduction: bool = True
    """Inductor's mix-order reduction for the LayerNorm backward (needs ``compile``): its weight
    and bias gradients as partial sums in the row kernel, each finished by an eager sum, a
    memset and a cast. ``false``: separate column reductions, about 210 fewer kernels a step for
    ``base`` (``mmscale.train.compile_tuning``). Measured (``base``, batch 128, one H200,
    BENCHMARKS.md): no gain alone (1.000x); with ``weights=bf16 step_graph=true flat_update=true``
    and ``model.gelu=erf_poly model.patch_embed=matmul``, 1.004x and 1.027x on two hosts."""
    compile_optimizer: bool = False
    """Clipping and AdamW as one ``torch.compile``d function (``mmscale.train.compiled_update``):
    two passes over the parameters instead of five under ``weights=bf16`` (the fp32 gradient is
    never written to memory), 6.0 instead of 10.3 GB a step for ``base``. The same math as the
    eager update (CPU test); AdamW's state keeps its usual form, so checkpoints load either way.
    Measured on one H200 (``base``, bf16 weights + step graph, BENCHMARKS.md): no faster (3.15
    against 3.12 ms per update; Inductor's kernels move their 6.0 GB at 1.9 TB/s, the fused AdamW
    kernel its 10.3 at 3.3), 0.7 GiB less peak memory, about 90 s more compile; on CPU 0.75x-0.78x
    the fused CPU AdamW. So it is off by default: it buys memory, not time. Measured under
    ``train.step_graph`` only: without it, each step also runs the update's Python (lists of the
    ~370 tensors) and dynamo's guards over them on the host, which was not timed. Not with
    ``precision=fp16`` (its gradient scaler) or ``parallel=fsdp``."""
    flat_update: bool = False
    """Under ``weights=bf16``: the weights, their fp32 copies, AdamW's moments and the gradients
    in flat buffers, and clipping + AdamW as three passes over them instead of five
    (``mmscale.train.flat_update``): 34 instead of 52 B per parameter, 6.8 instead of 10.3 GB a
    step for ``base``, in a few long kernels. The same math as the eager update (CPU test);
    AdamW's state keeps its usual form, so checkpoints load either way. Measured on one H200
    (``base``, BENCHMARKS.md): the update 1.846 against 3.082 ms (1.67x), the train step with
    ``step_graph`` 1.009x and 1.020x on two hosts, 0.3 GiB less peak memory. Every trainable
    weight must get a gradient at every step (a step where one does not is refused, naming it).
    One process; not with ``compile_optimizer``."""
    compile_ddp_buckets: bool = True
    """Under DDP with ``compile``: split the compiled graph at DDP's gradient buckets so that their
    all-reduces overlap backward (torch's default). ``false``: one graph, all-reduced after
    backward. On two H200s ``false`` ran 0.92x the split (BENCHMARKS.md): the overlap pays."""
    ddp_bucket_mb: int | None = None
    """DDP's gradient bucket size in MB (``bucket_cap_mb``). None: 25 (torch's default) in eager
    mode, 400 under ``compile``, where each bucket is also a compiled subgraph with its own
    host-side runtime cost. Measured on two H200s, compiled, per-rank batch 128 (BENCHMARKS.md):
    400 MB ran 1.13x the 25 MB step and 1.05x the 100 MB one; eager DDP was not measured apart."""
    weights: Literal["fp32", "bf16"] = "fp32"
    """``fp32``: fp32 weights under ``precision``'s autocast. ``bf16``: the model itself in bf16,
    without autocast (activations and the residual stream in bf16, half the bytes for the
    memory-bound norms and elementwise kernels), and AdamW on fp32 copies of the weights, written
    back after each step (``mmscale.train.master_weights``). Checkpoints hold the fp32 copies.
    Measured (``base``, batch 128, compiled, BENCHMARKS.md): 1.04x-1.07x the autocast step on one
    H200 with 0.7 GiB less, 1.03x-1.07x the autocast step under DDP on two; in one 1,000-step A/B
    the same recall, the loss 1-3% higher. Needs ``precision`` bf16 (or auto); not with
    ``parallel=fsdp``, ``fp8`` or ``grad_accum`` > 1 (its micro-batch sums would round in bf16).
    Under DDP on three or more ranks the bf16 gradients are averaged in fp32 (a communication
    hook); on two, DDP's bf16 mean is the same value, and the hook would cost 4-7%."""
    step_graph: bool = False
    """Capture the whole step (forward, backward, clipping, AdamW) as one CUDA graph after a few
    warm-up steps and replay it for every full batch (``mmscale.train.step_graph``); a batch
    shortened by bad samples runs uncaptured. The host then launches one graph per step instead
    of ~1,500 kernels. One CUDA process only; not with ``grad_accum`` > 1, ``precision=fp16`` or
    ``compile_mode=reduce-overhead``. Measured (``base``, batch 128, compiled, one H200,
    BENCHMARKS.md): 1.06x-1.08x with ``weights=bf16`` and 1.05x-1.09x with autocast; the time the
    GPU idled per step fell from 6.9 to 2.1 ms. From JPEG files: 1.01x with
    ``data.decode=gpu``, 1.075x with ``decode=cpu`` (the training thread leaves the host to the
    input path); with ``weights=bf16`` and ``decode=cpu``, 2,123 samples/s, 0.994 of synthetic
    batches in the same loop. The logged data wait then reads high: a replayed graph returns before the device
    is done, and the rest of the step is counted as waiting for the next batch. A capture that
    fails is logged and the run goes on uncaptured."""
    fp8: Literal["off", "tensorwise", "rowwise"] = "off"
    """FP8 matmuls through torchao's float8 recipe (Hopper GPUs, with bf16 autocast; needs torchao).
    Measured 0.73x the bf16 step for ``base`` on H100 (BENCHMARKS.md): it pays only on wider layers."""
    fp8_layers: Literal["auto", "all"] = "auto"
    """Which linears go FP8: ``auto`` = those torchao's filter says pay, ``all`` = every one that fits."""
    activation_checkpointing: bool = False
    """Recompute encoder blocks in backward (less memory, ~1/3 more compute)."""
    fused_adamw: bool = True
    """Use the fused AdamW kernel (one kernel for all parameters; CUDA, and CPU since torch 2.4)."""
    tf32: bool = True
    """Allow TF32 matmuls for fp32 work on CUDA."""
    parallel: Literal["auto", "none", "ddp", "fsdp"] = "auto"
    """Multi-process strategy under torchrun: ``auto`` = DDP when WORLD_SIZE > 1; ``fsdp`` = FSDP2
    (under bf16 its gathered weights are bf16; master weights, gradient reduction and AdamW fp32)."""
    fsdp_reshard_after_forward: bool = True
    """FSDP2: free each block's gathered weights after forward and gather again in backward (least
    memory). ``false`` keeps them until backward: one all-gather fewer per block per step."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto``: CUDA when available."""
    num_threads: int = 0
    """CPU threads for torch (0 = torch's default)."""
    seed: int = 0
    """Seed of weights, hard-negative sampling and dropout."""
    out_dir: str = "runs/train"
    """Where metrics.jsonl, monitor.jsonl, TensorBoard events, checkpoint.pt and result.json go."""
    checkpoint_every: int = 0
    """Write a checkpoint every K optimizer steps (0 = only at the end)."""
    resume: bool = False
    """Continue from ``out_dir/checkpoint.pt`` (model, optimizer, scheduler, RNG, data position)."""
    log_every: int = 10
    """Optimizer steps per metrics row (each row costs one device sync)."""
    eval_every: int = 0
    """Run retrieval eval every K steps (0 = only at the end)."""
    eval_samples: int = 1000
    """Val samples used for retrieval recall (the first N of the val split)."""
    eval_split: str = "val"
    """Split name used for evaluation."""
    tensorboard: bool = True
    """Write TensorBoard events beside metrics.jsonl."""
    progress: bool = True
    """Show a progress bar on the console (rank 0 only)."""
    peak_tflops: float = 0.0
    """Device peak for MFU in TFLOP/s (0 = look up the bf16 dense peak of the GPU in a table)."""
    monitor_interval_s: float = 0.2
    """Seconds between hardware samples (GPU utilization, SM clock, power, temperature through
    NVML; CPU, RSS, RAM, disk reads through psutil) written to ``out_dir/monitor.jsonl`` with a
    mark at every log step, so a step that slows can be read against clocks and CPU load. The
    sampler is a separate process of the first rank (one per host would see the same GPUs);
    0 = no monitor."""

    def bucket_cap_mb(self) -> int:
        """The DDP bucket size this job runs with (``ddp_bucket_mb``, or its default for the mode)."""
        if self.ddp_bucket_mb is not None:
            return self.ddp_bucket_mb
        return COMPILED_DDP_BUCKET_MB if self.compile else EAGER_DDP_BUCKET_MB

    def validate(self) -> None:
        if self.ddp_bucket_mb is not None and self.ddp_bucket_mb < 1:
            raise ConfigError("train.ddp_bucket_mb", f"must be >= 1 or unset, got {self.ddp_bucket_mb}")
        for name in ("steps", "batch_size", "grad_accum", "log_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}", f"must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "checkpoint_every", "eval_every", "num_threads", "time_limit_s",
                     "peak_tflops", "grad_clip", "weight_decay", "monitor_interval_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}", f"must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError("train.lr", f"must be > 0, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("train.min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        if not 0 < self.beta2 < 1:
            raise ConfigError("train.beta2", f"must be in (0, 1), got {self.beta2}")
        if self.weights == "bf16":
            if self.precision not in ("auto", "bf16"):
                raise ConfigError("train.weights", f"bf16 weights compute in bf16; train.precision={self.precision} "
                                  "asks for another precision (use bf16 or auto)")
            if self.parallel == "fsdp":
                raise ConfigError("train.weights", "bf16 weights with fp32 copies are not built for "
                                  "parallel=fsdp (FSDP2 gathers its weights in bf16 itself)")
            if self.fp8 != "off":
                raise ConfigError("train.weights", "bf16 weights are not combined with train.fp8")
            if self.grad_accum > 1:  # micro-batch gradients would be summed in bf16 on the weights
                raise ConfigError("train.weights", "bf16 weights sum micro-batch gradients in bf16; with "
                                  f"train.grad_accum={self.grad_accum} use train.weights=fp32")
        if self.flat_update:
            if self.weights != "bf16":
                raise ConfigError("train.flat_update", "updates the fp32 copies of bf16 weights: needs train.weights=bf16")
            if self.compile_optimizer:
                raise ConfigError("train.flat_update", "is another update than train.compile_optimizer; "
                                  "turn one of them off")
        if self.step_graph:
            refusal = ("grad_accum" if self.grad_accum > 1 else "precision" if self.precision == "fp16"
                       else "compile_mode" if self.compile_mode == "reduce-overhead"
                       else "device" if self.device == "cpu" else None)
            if refusal:
                raise ConfigError("train.step_graph", f"cannot capture the step with train.{refusal}="
                                  f"{getattr(self, refusal)} (it needs one CUDA process, grad_accum=1, "
                                  "no fp16 scaler, and no reduce-overhead graphs inside)")
        if self.compile_optimizer and (self.precision == "fp16" or self.parallel == "fsdp"):
            field_name, why = (("precision", "it does not unscale fp16 gradients") if self.precision == "fp16"
                               else ("parallel", "FSDP2's parameters are sharded DTensors"))
            raise ConfigError("train.compile_optimizer", f"is not built for train.{field_name}="
                              f"{getattr(self, field_name)} ({why}); use the eager update")
        if not self.compile_mix_order_reduction and not self.compile:
            raise ConfigError("train.compile_mix_order_reduction", "is an Inductor setting: needs train.compile=true")
        if self.compile_tuning and not self.compile:
            raise ConfigError("train.compile_tuning", "tunes torch.compile's kernels: needs train.compile=true")
        if self.compile_mode != "default" and not self.compile:
            raise ConfigError("train.compile_mode", f"{self.compile_mode!r} needs train.compile=true")
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                "train.batch_size", f"{self.batch_size} is not divisible by train.grad_accum={self.grad_accum}"
            )


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
        if self.train.flat_update and world_size > 1:  # it re-seats the weights' storage; DDP holds them
            raise ConfigError("train.flat_update", f"runs in one process; this run has {world_size} "
                              "(turn it off under torchrun)")
        if per_step < world_size:
            raise ConfigError("train.batch_size", f"{per_step} is smaller than the {world_size} processes")
        if per_step % (world_size * self.train.grad_accum):
            raise ConfigError(
                "train.batch_size",
                f"{per_step} is not divisible by {world_size} processes x train.grad_accum={self.train.grad_accum}",
            )
        return per_step // (world_size * self.train.grad_accum)
