"""The main job: run every section on one dataset, write ``results.json`` and ``report.html``.

``validate(...)`` resolves the configs of a preset once, fingerprints the environment, makes
sure there is a dataset (the user's, or a synthesized one), then runs the sections in order
with the hardware monitor attached throughout. Each section is a function returning a section
dict (``validate_sections``); one that raises is recorded as failed with its error, and the
rest still run, so a report always comes out and says what broke.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mmscale.config.load import load_config, to_dict
from mmscale.errors import ConfigError
from mmscale.monitor.brief import start_sampler
from mmscale.strict_json import to_plain, write_json
from mmscale.train.runtime import resolve_runtime

log = logging.getLogger(__name__)

SECTION_ORDER = ("data", "pipeline", "datascale", "batchsweep", "load", "scaling")
# each step's share of a run, for the ETA: seconds of the CPU preset on 2 cores (153 s in all); the
# ETA is elapsed time over the share done, so it corrects itself on other machines as sections end
STEP_SECONDS = {"prepare": 8, "data": 5, "pipeline": 10, "datascale": 31, "batchsweep": 50, "load": 25, "scaling": 25}
# Sections that read the dataset; the batch sweep and scaling train on synthetic tensors, so a
# run of those alone does not pay for synthesizing a dataset it never opens.
DATA_SECTIONS = frozenset({"data", "pipeline", "datascale", "load"})


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
        from mmscale.bench.batchsweep import VARIANTS

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
    from mmscale.data.config import DataConfig
    from mmscale.model.config import ModelConfig
    from mmscale.train.config import TrainConfig, TrainJob

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




def run_section(name: str, runner: Callable[[Context], dict], ctx: Context) -> dict:
    """One section, timed; an exception becomes a failed section instead of ending the run."""
    from mmscale.report.results import new_section, verdict
    from mmscale.validate_sections import TITLES

    t0 = time.perf_counter()
    if ctx.monitor is not None and hasattr(ctx.monitor, "mark"):
        ctx.monitor.mark(f"{name} start")
    try:
        section = runner(ctx)
    except Exception as exc:  # noqa: BLE001 - a failed section is a result, the others still run
        log.warning("section %s failed: %s", name, exc)
        section = new_section(TITLES[name], "failed", f"{type(exc).__name__}: {exc}")
        section["error"] = "".join(traceback.format_exception(exc))[-4000:]
        section["verdicts"].append(verdict("fail", f"the section raised {type(exc).__name__}; see the error detail"))
    section["wall_s"] = time.perf_counter() - t0
    return section


def prepare_data(ctx_settings: ValidateConfig, data_dir: str | None, run_dir: Path, job, say) -> Path:
    """The user's dataset, checked to exist, or a synthesized one under the run directory."""
    if data_dir:
        path = Path(data_dir)
        if not path.exists():
            raise ConfigError("--data", f"{path} does not exist")
        return path
    from mmscale.data import synthesize

    out = run_dir / "data"
    marker = out / ("train.jsonl" if ctx_settings.synth_format == "files" else "train-000000.tar")
    if not marker.exists():
        say(f"synthesizing {ctx_settings.synth_samples} samples into {out}")
        synthesize(ctx_settings.synth_samples, out, fmt=ctx_settings.synth_format, progress=False)
    return out


def validate(preset: str | None = "cpu", data_dir: str | None = None, out_dir: str | Path = "runs/validate",
             overrides: list[str] = (), file: str | None = None, show_progress: bool = True,
             merge: bool = False) -> dict:
    """Run the suite; returns the results document (also written to ``out_dir``).

    ``merge``: keep the sections an earlier invocation wrote into ``out_dir`` (same config) and
    add this invocation's (``validate_merge``), for suites split across several commands.
    """
    from mmscale.bench.environment import fingerprint
    from mmscale.report.answer import answer
    from mmscale.report.html import write_report
    from mmscale.report.results import new_results, new_section, write_results
    from mmscale.validate_sections import RUNNERS, TITLES, collect_metrics, monitor_section

    configs = load_configs(preset, list(overrides), file)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_runtime(configs.job.train).device.type
    settings = configs.validate
    t_start = time.perf_counter()
    with _progress(show_progress, sum(STEP_SECONDS.values())) as (progress, task):
        def say(text: str) -> None:
            if progress is not None:
                progress.update(task, description=text)
            else:
                log.info(text)

        data_path = Path(configs.job.data.path)
        if DATA_SECTIONS & set(settings.sections):
            data_path = prepare_data(settings, data_dir, run_dir, configs.job, say)
            job = dataclasses.replace(configs.job, data=dataclasses.replace(configs.job.data, path=str(data_path)))
            configs = dataclasses.replace(configs, job=job)
        results = new_results(preset, configs.as_dict(), fingerprint())
        previous, earlier_monitors = None, {}
        if merge:
            from mmscale.validate_merge import keep_earlier_monitors, load_previous

            previous = load_previous(run_dir, results["config"])
            earlier_monitors = keep_earlier_monitors(previous, run_dir)
        monitor = start_sampler(settings.monitor_interval_s)
        ctx = Context(configs, run_dir, data_path, device, monitor, say)
        try:
            _advance(progress, task, STEP_SECONDS["prepare"])
            for name in SECTION_ORDER:
                say(f"{TITLES[name]}")
                if name not in settings.sections:
                    results["sections"][name] = new_section(
                        TITLES[name], "skipped", "not in validate.sections for this run")
                else:
                    results["sections"][name] = run_section(name, RUNNERS[name], ctx)
                _advance(progress, task, STEP_SECONDS[name])
        finally:
            if monitor is not None:
                monitor.stop()
        results["sections"]["monitor"] = monitor_section(monitor, run_dir)
    results["wall_s"] = time.perf_counter() - t_start
    if previous is not None:
        from mmscale.validate_merge import merge_sections

        merge_sections(results, previous, list(settings.sections), earlier_monitors)
        results["invocations"][-1]["wall_s"] = results["wall_s"]
    results["metrics"] = collect_metrics(results["sections"])
    results["answer"] = answer(results)
    write_results(results, run_dir)
    write_report(results, run_dir)
    return results


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    if not enabled:
        yield None, None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description:<60}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[eta]}")) as progress:
        task = progress.add_task("preparing", total=total, eta="ETA: after the first step")
        yield progress, task


def _advance(progress, task, seconds_share: float) -> None:
    """Move the bar by a step's share and re-estimate the end: elapsed time over the share done."""
    if progress is None:
        return
    progress.advance(task, seconds_share)
    state = progress.tasks[task]
    left_s = state.elapsed / state.completed * (state.total - state.completed) if state.completed else 0.0
    progress.update(task, eta=f"ETA {int(left_s // 60)}:{int(left_s % 60):02d}" if left_s else "")


def run_one_section(name: str, preset: str | None, overrides: list[str] = (), file: str | None = None,
                    data_dir: str | None = None, out_dir: str | Path = "runs/bench",
                    show_progress: bool = True) -> dict:
    """One section alone (what ``mmscale bench datascale|batchsweep|scaling`` run), as a section dict.

    Writes ``<name>.json`` (the section plus config and environment) and the hardware monitor's
    timeline of the run, ``<name>.monitor.jsonl`` (one name per benchmark: several share one
    ``out_dir``), into ``out_dir``; the JSON carries the monitor's summary.
    """
    from mmscale.bench.environment import fingerprint
    from mmscale.validate_sections import RUNNERS, monitor_section

    configs = load_configs(preset, list(overrides), file)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_runtime(configs.job.train).device.type
    with _progress(show_progress, 1) as (progress, task):
        def say(text: str) -> None:
            if progress is not None:
                progress.update(task, description=text)

        data_path = Path(configs.job.data.path)
        if name == "datascale":
            data_path = prepare_data(configs.validate, data_dir, run_dir, configs.job, say)
            job = dataclasses.replace(configs.job, data=dataclasses.replace(configs.job.data, path=str(data_path)))
            configs = dataclasses.replace(configs, job=job)
        monitor = start_sampler(configs.validate.monitor_interval_s)
        ctx = Context(configs, run_dir, data_path, device, monitor, say)
        try:
            section = run_section(name, RUNNERS[name], ctx)
        finally:
            if monitor is not None:
                monitor.stop()
        if progress is not None:
            progress.advance(task)
    doc = {"section": section, "monitor": monitor_section(monitor, run_dir, f"{name}.monitor.jsonl"),
           "config": configs.as_dict(), "environment": fingerprint()}
    write_json(run_dir / f"{name}.json", to_plain(doc), indent=1)
    return section
