"""The validate job's configuration: the ``[validate]`` table's dataclasses, loaded with the job's own.

``load_configs`` resolves every table of a preset once (validate, data, model, train), so each
section and the benchmarks it calls read the same resolved values; ``Context`` is what each
section runner receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mmscale.bench.batchsweep import VARIANTS
from mmscale.config.load import load_config, to_dict
from mmscale.data.config import DataConfig
from mmscale.errors import ConfigError
from mmscale.model.config import ModelConfig
from mmscale.train.config import TrainConfig, TrainJob

SECTION_ORDER = ("data", "pipeline", "datascale", "batchsweep", "load", "scaling")
@dataclass
class DatascaleSettings:
    sizes: list[int] = field(default_factory=lambda: [10_000, 50_000, 100_000])
    """Subset sizes in samples; each trains the same number of epochs."""
    epochs: int = 1
    """Epochs per size."""
    repeats: int = 1
    """Runs per size; more than one gives the run-to-run spread that ``compare`` needs."""


@dataclass
class BatchsweepSettings:
    start_batch: int = 32
    """First batch of the doubling ladder."""
    max_batch: int = 4096
    """Stop doubling here even without an out-of-memory."""
    warmup_steps: int = 1
    """Untimed steps per batch (allocator warm-up, cuDNN/cuBLAS autotuning)."""
    timed_steps: int = 3
    """Timed steps per batch; their spread is the throughput's noise."""
    bisect_steps: int = 3
    """Bisection probes between the last batch that fitted and the first out-of-memory."""
    memory_cap_gib: float = 0.0
    """Simulated OOM above this peak (host RSS growth on CPU; 0 = only real OOMs)."""
    variants: list[str] = field(default_factory=lambda: ["bf16", "fp32", "bf16+ckpt", "fsdp"])
    """What-if variants, names in ``mmscale.bench.batchsweep.VARIANTS``."""


@dataclass
class ScalingSettings:
    max_world: int = 0
    """Largest number of ranks (0 = every visible GPU)."""
    strategies: list[str] = field(default_factory=lambda: ["ddp", "fsdp"])
    """Multi-process strategies to measure (``ddp``, ``fsdp``)."""
    per_rank_batch: int = 32
    """Per-rank batch of weak scaling."""
    strong_global_batch: int = 0
    """Global batch strong scaling holds fixed over 1..N ranks (0 = ``per_rank_batch * max_world``,
    which one rank must fit whole; a regime that does not fit is recorded as out of memory)."""
    steps: int = 10
    """Timed steps per regime."""
    warmup_steps: int = 3
    """Untimed steps before timing."""
    cpu_smoke: bool = False
    """On a machine without 2+ GPUs, run 1 and 2 gloo CPU processes as a smoke test."""


@dataclass
class DataBenchSettings:
    batches: int = 20
    """Batches timed per loader variant."""
    batch_size: int = 64
    """Samples per batch in the data benchmark."""


@dataclass
class PipelineSettings:
    steps: int = 10
    """Training steps timed stage by stage."""
    warmup: int = 2
    """Untimed steps before each timed run."""
    groups: list[str] = field(default_factory=lambda: ["input", "fusion_precision", "attention", "workers"])
    """What-if groups of the pipeline analyzer to run besides the main run."""


@dataclass
class LoadSettings:
    concurrency: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    """Closed-loop levels: concurrent clients."""
    window_s: float = 3.0
    """Length of one measurement window."""
    max_windows: int = 4
    """Windows per level at most (a level repeats until throughput and p99 agree)."""
    processes: int = 2
    """Client processes sending the load."""
    slo: str = "p99=100ms"
    """Latency objective for goodput."""
    server: str = "batched"
    """Server implementation to spawn (``batched`` or ``naive``)."""
    serve_args: list[str] = field(default_factory=list)
    """More ``mmscale serve`` options for the spawned server, e.g. ``["--frontends", "4",
    "--cuda-graphs"]``: the report names them, so a figure says which server made it."""


@dataclass
class ValidateConfig:
    sections: list[str] = field(default_factory=lambda: list(SECTION_ORDER))
    """Sections to run, in the fixed order above (others are reported as skipped)."""
    synth_samples: int = 112_000
    """Samples to synthesize when no ``--data`` is given (covers the largest datascale size)."""
    synth_format: str = "files"
    """Format of the synthesized set: ``files`` (JPEG + jsonl) or ``wds`` (tar shards)."""
    monitor_interval_s: float = 0.5
    """Hardware monitor sampling period."""
    data: DataBenchSettings = field(default_factory=DataBenchSettings)
    """Data loading benchmark."""
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    """Stage breakdown and bottleneck analysis."""
    datascale: DatascaleSettings = field(default_factory=DatascaleSettings)
    """Time and memory against dataset size."""
    batchsweep: BatchsweepSettings = field(default_factory=BatchsweepSettings)
    """Memory and throughput against batch size."""
    load: LoadSettings = field(default_factory=LoadSettings)
    """Serving latency against concurrency."""
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    """Multi-GPU scaling."""

    def validate(self) -> None:
        for name in self.sections:
            if name not in SECTION_ORDER:
                raise ConfigError("validate.sections", f"unknown section '{name}' (known: {', '.join(SECTION_ORDER)})")
        if self.synth_samples < 1:
            raise ConfigError("validate.synth_samples", f"must be >= 1, got {self.synth_samples}")
        if not self.datascale.sizes or min(self.datascale.sizes) < 1:
            raise ConfigError("validate.datascale.sizes", "needs at least one positive size")
        if self.datascale.epochs < 1 or self.datascale.repeats < 1:
            raise ConfigError("validate.datascale", "epochs and repeats must be >= 1")
        if self.batchsweep.start_batch < 1 or self.batchsweep.max_batch < self.batchsweep.start_batch:
            raise ConfigError("validate.batchsweep.max_batch", "must be >= start_batch >= 1")
        if self.batchsweep.timed_steps < 1:
            raise ConfigError("validate.batchsweep.timed_steps", "must be >= 1")
        if self.monitor_interval_s <= 0:
            raise ConfigError("validate.monitor_interval_s", "must be > 0")
        if self.scaling.per_rank_batch < 1 or self.scaling.strong_global_batch < 0:
            raise ConfigError("validate.scaling", "per_rank_batch must be >= 1 and strong_global_batch >= 0")
        strategies = ("ddp", "fsdp")  # what mmscale.bench.scaling launches
        for name in self.scaling.strategies:
            if name not in strategies:
                raise ConfigError("validate.scaling.strategies",
                                  f"unknown strategy {name!r} (known: {', '.join(strategies)})")

        for name in self.batchsweep.variants:
            if name not in VARIANTS:
                raise ConfigError("validate.batchsweep.variants",
                                  f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
        if self.synth_format not in ("files", "wds"):
            raise ConfigError("validate.synth_format", f"must be 'files' or 'wds', got {self.synth_format!r}")


@dataclass
class Configs:
    """Every config a validate run resolved, loaded once from the same preset and overrides."""

    validate: ValidateConfig
    job: object  # mmscale.train.TrainJob
    preset: str | None
    overrides: list[str] = field(default_factory=list)  # as given, for benchmarks that reload the preset

    def as_dict(self) -> dict:
        return {"validate": to_dict(self.validate), **to_dict(self.job)}


def load_configs(preset: str | None, overrides: list[str] = (), file: str | None = None) -> Configs:
    """Each table of the preset into its own dataclass; an override goes to the table it names."""
    tables = {"validate": ValidateConfig, "data": DataConfig, "model": ModelConfig, "train": TrainConfig}
    for text in overrides:
        head = text.split("=", 1)[0].split(".", 1)[0].strip()
        if head not in tables:
            raise ConfigError(text.split("=", 1)[0], f"overrides must start with one of {', '.join(tables)}")
    loaded = {
        name: load_config(cls, preset=preset, file=file, section=name,
                          overrides=[o for o in overrides if o.split(".", 1)[0].strip() == name])
        for name, cls in tables.items()
    }
    job = TrainJob(data=loaded["data"], model=loaded["model"], train=loaded["train"])
    job.validate()
    return Configs(validate=loaded["validate"], job=job, preset=preset, overrides=list(overrides))


@dataclass
class Context:
    """What every section runner receives."""

    configs: Configs
    run_dir: Path
    data_path: Path
    device: str
    monitor: object | None = None
    say: Callable[[str], None] = lambda text: None

    @property
    def settings(self) -> ValidateConfig:
        return self.configs.validate
