"""``data.decode=auto`` against both fixed input paths, in one process: train the preset's model from
JPEG files once per input path (decode=cpu, gpu, auto by default) and compare samples/s, data-wait
share, and the path auto kept with the figures its probe measured.

Steady state: the steps after the longest the probe can take, the same steps in every run. With
torch.compile the first run also pays the cold compile (later runs hit Inductor's cache), so its
whole-run samples/s is low: compare the steady-state figures then. The ``synthetic*`` runs are the
same loop on one device-resident batch: the partner a from-files run is held against (target: from
files >= 95% of synthetic, steady state); ``synthetic_no_monitor`` beside ``synthetic`` gives the
hardware monitor's cost on the step (target < 1%).
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmscale.bench.decode.partners import PATHS, SYNTHETIC_PATHS, injected_paths, needs_cuda, path_settings
from mmscale.bench.decode.steady import monitor_overhead, partner_ratios, ratios, steady, steady_hardware
from mmscale.config.load import load_config
from mmscale.data.synth import synthesize
from mmscale.train import TrainJob, decode_probe, train
from mmscale.train.decode_probe import plan_decode

RESULTS_FILE = "decode_auto.json"


@dataclass
class DecodeAutoConfig:
    preset: str = "base"
    overrides: list[str] = field(default_factory=list)  # config overrides for every run (data.*, model.*, train.*)
    data: str = ""  # JPEG dataset: manifest or directory ("": synthesize ``synth`` samples into OUT/data)
    synth: int = 4096
    out: str = "runs/decode_auto"
    device: str = "auto"  # auto, cpu or cuda
    steps: int = 560  # training steps per run
    max_run_s: float = 150.0  # time limit of each run's loop
    monitor_interval_s: float = 0.2  # the hardware monitor's sampling interval
    cpu_stand_in: bool = False  # without CUDA, run the gpu path's code on the CPU device
    paths: list[str] = field(default_factory=lambda: list(PATHS))  # the runs, in order (partners.KNOWN_PATHS)
    probe_steps: tuple[int, int] | None = None  # auto's probe: untimed, timed steps per path (None: from the workers)


def prepare_data(cfg: DecodeAutoConfig) -> str:
    if cfg.data:
        return cfg.data
    out = Path(cfg.out) / "data"
    if not (out / "train.jsonl").is_file():
        synthesize(cfg.synth, out, progress=False)
    return str(out)


def load_job(cfg: DecodeAutoConfig, data: str, decode: str, out_dir: Path) -> TrainJob:
    fixed = [f"data.path={data}", f"train.out_dir={out_dir}", f"train.steps={cfg.steps}",
             f"train.time_limit_s={cfg.max_run_s}", "train.checkpoint_every=0", "train.eval_every=0",
             "train.eval_samples=1",  # evaluation is not what is compared: one sample skips it
             "train.log_every=10", "train.trackers=[]"]
    if cfg.device != "auto":
        fixed.append(f"train.device={cfg.device}")
    # the path's own settings last: they define the run, and an override given for every run must
    # not undo them
    return load_config(TrainJob, preset=cfg.preset, overrides=fixed + list(cfg.overrides) + path_settings(decode))


def run_one(cfg: DecodeAutoConfig, data: str, decode: str, cuda: bool, after_step: int) -> dict:
    """One training run on input path ``decode``: its row (or why it was skipped)."""
    out_dir = Path(cfg.out) / decode
    metrics = out_dir / "metrics.jsonl"
    if metrics.exists():
        metrics.unlink()  # rows of an earlier run would mix in
    if needs_cuda(decode) and not cuda:
        return {"path": decode, "skipped": "needs CUDA"}
    if decode.startswith("gpu") and not cuda and not cfg.cpu_stand_in:
        return {"path": decode, "skipped": "no CUDA (pass --cpu-stand-in to run the gpu path's code on CPU)"}
    paths, config_decode = injected_paths(decode, cuda, cfg.cpu_stand_in)
    job = load_job(cfg, data, config_decode, out_dir)
    started = time.perf_counter()
    interval = 0.0 if decode == "synthetic_no_monitor" else cfg.monitor_interval_s
    result = train(job, show_progress=False, decode_paths=paths, monitor_interval_s=interval)
    wall_s = time.perf_counter() - started
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)  # GBs for base; not what is measured
    rows = [json.loads(line) for line in open(metrics)]
    row = {"path": decode, "kept": "synthetic" if decode in SYNTHETIC_PATHS else result.decode,
           "steps": result.steps, "samples_per_s": result.samples_per_s,
           "data_wait_pct": result.data_wait_pct, "loop_s": result.wall_s, "run_s": wall_s,
           **steady(rows, job.train.batch_size, after_step), "probe": result.decode_probe,
           "monitor": result.monitor, **steady_hardware(out_dir / "monitor.jsonl", after_step)}
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


def bench_decode_auto(cfg: DecodeAutoConfig, say=print) -> dict:
    """Every run of ``cfg.paths`` in turn: ``{"summary": ..., "runs": {path: row}}``, also written to
    OUT/decode_auto.json. ``say`` gets the plan and each run's start."""
    saved = decode_probe.PROBE_WARMUP_STEPS, decode_probe.PROBE_TIMED_STEPS
    if cfg.probe_steps:
        decode_probe.PROBE_WARMUP_STEPS, decode_probe.PROBE_TIMED_STEPS = cfg.probe_steps
    try:
        return _bench(cfg, say)
    finally:
        decode_probe.PROBE_WARMUP_STEPS, decode_probe.PROBE_TIMED_STEPS = saved


def _bench(cfg: DecodeAutoConfig, say) -> dict:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = cfg.device != "cpu" and torch.cuda.is_available()
    started = time.perf_counter()
    data = prepare_data(cfg)
    probe_job = load_job(cfg, data, "auto", out / "auto")
    plan = plan_decode(probe_job.data, torch.device("cuda" if cuda else "cpu"), cfg.steps,
                       paths=["gpu", "cpu"] if cuda or cfg.cpu_stand_in else None)
    # every run's steady state starts where auto's probe ends at the latest, so the runs compare
    # the same steps
    log_every = probe_job.train.log_every
    after_step = -(-max(plan.probe_steps, log_every) // log_every) * log_every
    say(f"preset {cfg.preset}, {cfg.steps} steps per run, batch {probe_job.train.batch_size}, "
        f"workers {probe_job.data.num_workers}, compile {probe_job.train.compile}; auto plan: {plan.paths} "
        f"({plan.probe_steps} probe steps); steady state from step {after_step}")
    rows = {}
    for path in cfg.paths:
        say(f"running decode={path} ...")
        rows[path] = run_one(cfg, data, path, cuda, after_step)
    summary = ratios(rows) if set(PATHS) <= set(rows) else {}
    summary["files_vs_synthetic"] = partner_ratios(rows)
    summary.update(monitor_overhead(rows))
    summary.update({"device": torch.cuda.get_device_name() if cuda else "cpu", "preset": cfg.preset,
                    "steps": cfg.steps, "steady_from_step": after_step, "overrides": list(cfg.overrides),
                    "wall_s": time.perf_counter() - started})
    result = {"summary": summary, "runs": rows}
    (out / RESULTS_FILE).write_text(json.dumps(result, indent=1))
    return result
