"""Checkpoint save and load time: the one-process ``checkpoint.pt`` against the sharded DCP folder.

Both formats hold the same state (model weights, AdamW moments, train state) of a model built the
way ``mmscale train`` builds it, after one optimizer step so that the moments exist. Each save
and load is timed to the file being on disk (the save includes its fsync and rename) and to the
state being back in the model and optimizer; the median of ``repeats`` is reported.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import torch

from mmscale import stats
from mmscale.config.load import load_config
from mmscale.train.build import build_run
from mmscale.train.config import TrainJob
from mmscale.train.distributed import DistEnv
from mmscale.train.runtime import resolve_runtime
from mmscale.train import sharded_checkpoint as sharded
from mmscale.train.checkpoint import rng_state
from mmscale.train.state import find_checkpoint, named_state, restore_training_state, save_training_state
from mmscale.train.synthetic import synthetic_batch

FORMATS = ("single_file", "dcp")


def bench_checkpoint(preset: str = "base", overrides: tuple[str, ...] = (), repeats: int = 3,
                     directory: str | None = None) -> dict:
    """``{"device", "bytes", "rows": [{"format", "save_s", "load_s", "bytes"}], "ratios"}``."""
    job = load_config(TrainJob, preset=preset, overrides=["train.step_graph=false", *overrides])
    runtime = resolve_runtime(job.train)
    run = build_run(job, runtime, schedule=True)
    run.step(*synthetic_batch(job.model, 2, runtime.device))  # AdamW makes its moments at the first step
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)
    root = Path(tempfile.mkdtemp(prefix="mmscale-ckpt-", dir=directory))
    try:
        rows = [_time_format(fmt, root / fmt, job, run, repeats) for fmt in FORMATS]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    single, dcp_row = rows
    return {"device": str(runtime.device), "torch": torch.__version__, "preset": preset, "repeats": repeats,
            "rows": rows,
            "ratios": {"dcp_save_over_single_file": dcp_row["save_s"] / single["save_s"],
                       "dcp_load_over_single_file": dcp_row["load_s"] / single["load_s"]}}


def _time_format(fmt: str, out_dir: Path, job: TrainJob, run, repeats: int) -> dict:
    saves, loads = [], []
    scheduler = run.scheduler
    for attempt in range(repeats):
        t0 = time.perf_counter()
        if fmt == "dcp":  # what every rank of a torchrun job calls; here the one rank writes all of it
            train_state = {"step": attempt, "scheduler": scheduler.state_dict(), "scaler": {}, "rng": rng_state(),
                           "model_config": dataclasses.asdict(job.model), "batch_size": job.train.batch_size}
            sharded.save_sharded(out_dir / sharded.SHARDED_DIR, attempt, named_state(run.wrapped, run.optimizer),
                                 train_state, DistEnv())
        else:
            save_training_state(out_dir, attempt, job, run.wrapped, run.optimizer, scheduler, None, DistEnv())
        saves.append(time.perf_counter() - t0)
        path = find_checkpoint(out_dir)
        t0 = time.perf_counter()
        restore_training_state(path, job, run.wrapped, run.optimizer, scheduler, None)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        loads.append(time.perf_counter() - t0)
    path = find_checkpoint(out_dir)
    size = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return {"format": fmt, "save_s": stats.median(saves), "load_s": stats.median(loads), "bytes": size}
