"""``bench_pipeline``: where one training step's time goes, and what would fix it.

1. The main run: the preset's model trains from JPEG files through the configured input path
   (the job's ``data.decode``, as ``mmscale train`` would run it) with every stage timed
   (``stages``), the hardware monitor sampling, and a short profiled pass for the GPU
   idle fraction (and ``--trace``). The stages are checked against the wall-clock step.
2. Worker-side host stages: the CPU path's read/decode/resize/tokenize/collate timed inside the
   workers, pin and H2D in the main process (``workers``).
3. What-if variants in the same run (``variants``) and the attention sweep
   (``attention``).

Everything returns flat rows; ``render_table`` prints them, ``PipelineResult.as_dict`` is the JSON.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmscale.bench.pipeline.attention import sweep_attention
from mmscale.bench.pipeline.run import (cycle, ours_to_device, profile_steps, run_steps, step_is_compiled,
                                        synthetic_to_device)
from mmscale.bench.pipeline.variants import VARIANTS
from mmscale.bench.pipeline.verdict import account, verdict
from mmscale.bench.pipeline.workers import aggregate_host_stages, build_timed_loader
from mmscale.config.load import load_config
from mmscale.data.config import DataConfig
from mmscale.data.gpu_decode import resolve_decode
from mmscale.data.loader import build_loader
from mmscale.data.readers import read_manifest
from mmscale.data.reference import reference_tokenizer
from mmscale.data.synth import synthesize
from mmscale.data.tokenizer import load_tokenizer
from mmscale.errors import ConfigError
from mmscale.model.config import ModelConfig
from mmscale.monitor import HardwareMonitor
from mmscale.strict_json import write_json
from mmscale.train.build import build_run
from mmscale.train.config import TrainConfig, TrainJob
from mmscale.train.runtime import resolve_runtime
from mmscale.train.synthetic import synthetic_batch

log = logging.getLogger(__name__)
CPU_ATTENTION = ([32, 128], [8])  # default sweep on CPU: the full grid takes minutes on 2 cores
GROUPS = ("input", "fusion_precision", "compile", "monitor_overhead", "attention", "workers")


@dataclass
class PipelineConfig:
    preset: str = "tiny"
    """Model/data/train preset (tiny: CPU-sized; base: the GPU model)."""
    overrides: list[str] = field(default_factory=list)
    """Dotted overrides over the preset (``model.fusion=reference``, ``data.num_workers=8``)."""
    data: str = ""
    """Dataset (manifest or directory); empty: synthesize ``synth_samples`` JPEGs under ``out_dir``."""
    synth_samples: int = 0
    """Samples to synthesize when ``data`` is empty; 0: enough for every run below."""
    out_dir: str = "runs/pipeline"
    """Where results.json, monitor.jsonl (and synthetic data) go."""
    device: str = "auto"
    """auto | cpu | cuda."""
    batch_size: int = 0
    """Samples per step; 0: the preset's train.batch_size."""
    steps: int = 10
    """Timed steps per run (each variant runs this many)."""
    warmup: int = 2
    """Untimed steps before each run (allocator, cuDNN autotune, worker start-up)."""
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    """Which parts to run besides the main run (input, fusion_precision, compile,
    monitor_overhead, attention, workers)."""
    attention_text_lens: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    """Text lengths of the attention sweep."""
    attention_batches: list[int] = field(default_factory=lambda: [8, 32, 128])
    """Batch sizes of the attention sweep."""
    trace_dir: str = ""
    """Write a torch.profiler Chrome trace (opens in Perfetto) here; empty: no trace."""
    monitor_interval_s: float = 0.2
    """Hardware monitor sampling interval (0.2 s = 5 Hz)."""
    compile_on_cpu: bool = False
    """Run the torch.compile variant on CPU too (slow to compile; skipped by default)."""
    cpu_threads: int = 0
    """torch intra-op threads on CPU; 0: torch's default."""

    def validate(self) -> None:
        for name in ("steps", "warmup"):
            if getattr(self, name) < (1 if name == "steps" else 0):
                raise ConfigError(f"pipeline.{name}", f"must be >= {1 if name == 'steps' else 0}")
        unknown = sorted(set(self.groups) - set(GROUPS))
        if unknown:
            raise ConfigError("pipeline.groups", f"unknown {unknown} (known: {', '.join(GROUPS)})")
        if self.monitor_interval_s <= 0:
            raise ConfigError("pipeline.monitor_interval_s", "must be > 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("pipeline.device", f"must be auto, cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("pipeline.device", "cuda requested but CUDA is not available")


def load_job(preset: str, overrides: list[str]):
    """The preset's [data], [model], [train] tables as a validated ``TrainJob``."""
    parts = {}
    for section, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        mine = [o for o in overrides if o.split("=", 1)[0].split(".")[0] == section]
        parts[section] = load_config(cls, preset=preset, overrides=mine, section=section)
    stray = [o for o in overrides if o.split("=", 1)[0].split(".")[0] not in parts]
    if stray:
        raise ConfigError(stray[0].split("=", 1)[0], "overrides must start with data., model. or train.")
    job = TrainJob(**parts)
    job.validate()
    return job


class PipelineContext:
    """What every variant needs: the job, device, data and a factory of fresh train steps."""

    def __init__(self, cfg: PipelineConfig, job, device: torch.device, index, data_cfg):
        self.cfg, self.job, self.device, self.index = cfg, job, device, index
        self.data_cfg = data_cfg
        self.batch_size = cfg.batch_size or job.train.batch_size
        self.steps, self.warmup = cfg.steps, cfg.warmup
        self.tokenizer = load_tokenizer(job.data.tokenizer)
        self._reference_tokenizer = None
        self._product_step = None
        choice, why = resolve_decode("auto", device)
        self.gpu_decode_reason = "" if choice == "gpu" else f"GPU decode unavailable ({why})"

    def reference_tokenizer(self):
        if self._reference_tokenizer is None:
            self._reference_tokenizer = reference_tokenizer(self.job.data.tokenizer)
        return self._reference_tokenizer

    def loader(self, decode: str, decode_threads: int = 2):
        """Endless, as training reads: the workers go on into the next pass without a pause."""
        cfg = dataclasses.replace(self.data_cfg, decode=decode)
        return build_loader(cfg, self.batch_size, self.tokenizer, device=self.device, endless=True,
                            decode_threads=decode_threads)

    def train_step(self, model: dict | None = None, **train_fields):
        """The step ``mmscale train`` runs for this job (built once and reused), or with ``model``
        fields and ``TrainConfig`` fields over the job's (a variant, built fresh)."""
        if not model and not train_fields and self._product_step is not None:
            return self._product_step
        model_cfg = dataclasses.replace(self.job.model, **(model or {}))
        train_cfg = dataclasses.replace(self.job.train, device=self.device.type, **train_fields)
        # a step graph is captured in the last warm-up step, so that every timed step is a replay
        run = build_run(TrainJob(data=self.job.data, model=model_cfg, train=train_cfg), resolve_runtime(train_cfg),
                        schedule=False, graph_warmup_steps=max(0, self.warmup - 1))
        if not model and not train_fields:
            self._product_step = run.step
        return run.step


@dataclass
class PipelineResult:
    config: dict
    device: str
    batch_size: int
    decode: str  # input path of the main run: cpu | gpu
    stages: dict  # StageAccount.as_dict() of the main run
    verdict: dict
    profile: dict
    workers: dict | None
    variants: list[dict]
    attention: list[dict]
    monitor: dict
    skipped: dict[str, str]
    errors: dict[str, str]
    wall_s: float
    synthetic_samples_per_s: float = 0.0  # same model and step on device-resident batches
    from_files_vs_synthetic: float = 0.0  # main run samples/s over synthetic (target >= 0.95)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def prepare_data(cfg: PipelineConfig, job, batch_size: int) -> str:
    if cfg.data:
        return cfg.data

    need = cfg.synth_samples or max(256, batch_size * (cfg.steps + cfg.warmup + 4))
    need = max(need, batch_size * 2)  # at least two batches, so an epoch boundary is exercised
    out = Path(cfg.out_dir) / "data"
    if not (out / "train.jsonl").is_file() or sum(1 for _ in open(out / "train.jsonl")) < need * 0.9:
        synthesize(int(need / 0.9) + 1, out, progress=False)
    return str(out)


def bench_pipeline(cfg: PipelineConfig, progress=None) -> PipelineResult:
    """Run the analyzer (see the module doc). ``progress(text)`` is told each phase."""
    cfg.validate()
    say = progress or (lambda text: log.info(text))
    started = time.perf_counter()
    job = load_job(cfg.preset, cfg.overrides)
    device = resolve_device(cfg.device)
    threads = cfg.cpu_threads
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    batch_size = cfg.batch_size or job.train.batch_size
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say("preparing data")
    data_cfg = dataclasses.replace(job.data, path=prepare_data(cfg, job, batch_size))
    index = read_manifest(data_cfg.path, None if data_cfg.format == "auto" else data_cfg.format,
                          data_cfg.image_root, limit=data_cfg.limit)
    ctx = PipelineContext(cfg, job, device, index, data_cfg)
    # the main run measures the input path the job trains with; the what-if rows measure the others
    decode, _ = resolve_decode(data_cfg.decode, device)
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}  # parts that failed (a bug or the machine), named in the output

    monitor = HardwareMonitor(interval_s=cfg.monitor_interval_s, stream_path=None)
    with monitor:
        say(f"main run: {cfg.steps} steps, decode={decode}")
        monitor.mark("main_run")
        step = ctx.train_step()
        loader = ctx.loader(decode)
        # energy and GPU activity of the timed steps only (after worker start-up and warm-up)
        main_monitor = HardwareMonitor(interval_s=cfg.monitor_interval_s)
        main_batches = cycle(lambda: loader)
        main = run_steps(main_batches, ours_to_device, step, device, cfg.steps, cfg.warmup,
                         hooks=not step_is_compiled(step), on_timed_start=main_monitor.start)
        main_monitor.stop()
        loop_wait = main_monitor.summary()["fields"].get("main_thread_wait_pct", {}).get("mean")
        main_batches.close()  # a decode thread stops; the next pass over the loader starts its own
        main_samples = main.samples
        acc = account(main.steps)
        say("same steps on synthetic device batches (the no-input-cost reference)")

        fake = synthetic_batch(job.model, batch_size, device)
        synthetic = run_steps(cycle(lambda: [fake]), synthetic_to_device, step, device, cfg.steps, cfg.warmup,
                              hooks=not step_is_compiled(step))
        prof = {"gpu_idle_frac": None, "gpu_idle_note": "no GPU: idle fraction not applicable", "trace": None}
        if device.type == "cuda" or cfg.trace_dir:
            say("profiling")
            monitor.mark("profile")
            profiled = cycle(lambda: loader)
            prof = profile_steps(profiled, ours_to_device, step, device,
                                 steps=min(3, cfg.steps), trace_dir=cfg.trace_dir or None)
            profiled.close()
        loader.close()  # its workers go quiet before the variants are timed
        compute_idle = _compute_idle(acc, prof.get("gpu_idle_frac"))
        result_verdict = verdict(acc, device.type, prof.get("gpu_idle_frac"), compute_idle,
                                 loop_wait_frac=None if loop_wait is None else loop_wait / 100)
        workers = None
        if "workers" in cfg.groups:
            say("worker-side host stages")
            monitor.mark("workers")
            workers = worker_stages(ctx)
        variant_rows = []
        for group, fn in VARIANTS.items():
            if group not in cfg.groups:
                continue
            say(f"variants: {group}")
            monitor.mark(f"variants={group}")
            try:
                variant_rows += [r.as_dict() for r in fn(ctx)]
            except Exception as exc:  # keep the other groups' figures; the failure is reported
                log.exception("variant group %s failed", group)
                errors[group] = f"{type(exc).__name__}: {exc}"
        attention_rows = []
        if "attention" in cfg.groups:
            say("attention sweep")
            monitor.mark("attention")
            image_tokens = _image_tokens(job.model)
            lens, batches = cfg.attention_text_lens, cfg.attention_batches
            defaults = PipelineConfig()
            if device.type != "cuda" and (lens, batches) == (defaults.attention_text_lens, defaults.attention_batches):
                lens, batches = CPU_ATTENTION
                skipped["attention.full_sweep"] = (f"CPU run: sweep reduced to text lengths {lens} x batches "
                                                   f"{batches} (pass --text-lens/--batches for more)")
            try:
                attention_rows = [r.as_dict() for r in sweep_attention(
                    job.model, device, lens, batches, image_tokens,
                    torch.bfloat16 if device.type == "cuda" else torch.float32)]
            except Exception as exc:
                log.exception("attention sweep failed")
                errors["attention"] = f"{type(exc).__name__}: {exc}"
            if device.type != "cuda":
                skipped["attention.peak_memory"] = "CPU run: peak memory per call is measured on CUDA only"
                skipped["attention.sdpa_backends"] = "CPU run: SDPA backend sweep (flash, mem_efficient, cudnn) needs CUDA"
    for row in variant_rows:
        if row["skipped"]:
            skipped[f"{row['group']}.{row['variant']}"] = row["skipped"]
    if prof.get("gpu_idle_frac") is None:
        skipped["gpu_idle_frac"] = prof.get("gpu_idle_note", "not measured")
    timeline = monitor.write_jsonl(out_dir / "monitor.jsonl")
    mon = monitor.summary()
    mon["timeline"] = str(timeline)
    main_summary = main_monitor.summary()
    mon["main_run"] = {  # the main run alone: energy per sample and honest GPU activity
        "joules_per_sample": main_monitor.joules_per_sample(main_samples) if main_monitor.gpu_count else None,
        "energy": main_summary["energy"], "samples": main_samples,
        "gpu_activity_source": main_summary["gpu_activity_source"],
        "fields": {k: v["mean"] for k, v in main_summary["fields"].items() if k.startswith("gpu") or k.endswith("cpu_pct")},
    }
    mon["joules_per_sample"] = mon["main_run"]["joules_per_sample"]
    result = PipelineResult(
        config=dataclasses.asdict(cfg), device=str(device), batch_size=batch_size, decode=decode,
        stages=acc.as_dict(), verdict=dataclasses.asdict(result_verdict), profile=prof, workers=workers,
        variants=variant_rows, attention=attention_rows,
        monitor=mon, skipped=skipped, errors=errors,
        wall_s=time.perf_counter() - started, synthetic_samples_per_s=synthetic.samples_per_s,
        from_files_vs_synthetic=main.samples_per_s / synthetic.samples_per_s if synthetic.samples_per_s else 0.0)
    write_json(out_dir / "results.json", result.as_dict(), indent=1, default=str)
    return result


def _compute_idle(acc, gpu_idle_frac):
    """GPU idle share of the compute stages, estimated from the whole-step idle fraction minus the
    input stages (during which the device waits by construction)."""
    if gpu_idle_frac is None:
        return None
    compute_ms = acc.step_ms - sum(acc.stage_ms.get(k, 0.0) for k in ("data_wait", "h2d", "decode"))
    if compute_ms <= 0:
        return None
    input_ms = acc.step_ms - compute_ms
    return max(0.0, min(1.0, (gpu_idle_frac * acc.step_ms - input_ms) / compute_ms))


def _image_tokens(model_cfg) -> int:
    patch = model_cfg.image_patch_size or 16
    return (model_cfg.image_size // patch) ** 2 + 1  # patches + [CLS]


def worker_stages(ctx) -> dict:
    """The CPU path's host stages, timed inside the workers, plus pin and H2D in this process."""
    d = ctx.data_cfg
    loader = build_timed_loader(ctx.index, ctx.tokenizer, ctx.batch_size, d.image_size, d.max_image_pixels,
                                d.max_text_len, d.num_workers, d.seed, d.prefetch_factor)
    batches, main_ms = [], []
    cuda = ctx.device.type == "cuda"
    n = ctx.steps + ctx.warmup
    for k, batch in enumerate(cycle(lambda: loader)):
        if k >= n:
            break
        t0 = time.perf_counter()
        if cuda:
            batch.pin_memory()
        t1 = time.perf_counter()
        batch.images.to(ctx.device, non_blocking=True)
        if cuda:
            torch.cuda.synchronize()  # host-device sync: time the copy itself
        t2 = time.perf_counter()
        if k >= ctx.warmup:
            batches.append(batch)
            main_ms.append({"pin": (t1 - t0) * 1e3 if cuda else None, "h2d": (t2 - t1) * 1e3})
    return aggregate_host_stages(batches, main_ms)
