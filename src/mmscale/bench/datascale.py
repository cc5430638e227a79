"""Data-scale benchmark: the same epochs on growing subsets, and whether cost grows linearly.

The reference method trains on 10k, 50k and 100k samples and records time and memory. A
pipeline that streams its data should take time proportional to N and memory independent of
N; a pipeline that preloads (the reference's ``Dataset`` holding every path and caption as
Python objects, or decoded images in a cache) shows memory growing with N. We fit
``time = a * N + b``, report R^2, and flag super-linear time (log-log exponent above 1) and
memory that grows with N.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Callable

from mmscale import stats
from mmscale.bench.batchsweep import PeakMemory, free_memory
from mmscale.train import train
from mmscale.train.runtime import resolve_runtime

GIB = 2**30
# Memory "grows with N" when the peak at the largest N is this much above the smallest, both
# relatively and absolutely (allocator noise on small runs is a few tens of MiB).
MEMORY_GROWTH_REL = 0.10
MEMORY_GROWTH_BYTES = 64 * 2**20
# A compiled job's warm-up run: enough steps to compile, capture the step graph and run it a while.
WARMUP_STEPS = 30


@dataclass
class DatascaleRow:
    """One training run on the first ``n_samples`` samples."""

    n_samples: int
    repeat: int
    epochs: int
    steps: int
    samples_seen: int
    wall_s: float  # the whole run: model build, loader start, steps, final eval and checkpoint
    train_wall_s: float  # the training loop alone (what the fit uses: the cost that scales with N)
    samples_per_s: float  # samples_seen / train_wall_s
    peak_rss_gib: float  # main process host RSS high-water mark during the run
    peak_rss_delta_gib: float  # the same above the RSS before the run
    peak_gpu_gib: float | None  # CUDA allocator peak (None on CPU)
    skipped: int = 0  # samples the loader skipped (bad files), counted not hidden
    data_wait_pct: float | None = None  # share of the loop spent waiting for batches (trainer's figure)
    startup_s: float | None = None  # the loop's time before its steady window: compile, capture, first batches

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunMeasure:
    """What one training run reports back to the benchmark."""

    steps: int
    samples_seen: int
    skipped: int = 0
    train_wall_s: float | None = None  # loop time reported by the trainer (None: use wall time)
    data_wait_pct: float | None = None
    startup_s: float | None = None


Runner = Callable[[int, int], RunMeasure]  # (n_samples, epochs) -> measure


def measure_size(run: Runner, n_samples: int, epochs: int, repeat: int, device: str) -> DatascaleRow:
    free_memory()
    host, gpu = PeakMemory("cpu"), PeakMemory(device) if device.startswith("cuda") else None
    with host:
        if gpu:
            gpu.__enter__()
        t0 = time.perf_counter()
        measure = run(n_samples, epochs)
        wall_s = time.perf_counter() - t0
    train_wall_s = measure.train_wall_s if measure.train_wall_s else wall_s
    return DatascaleRow(
        n_samples=n_samples, repeat=repeat, epochs=epochs, steps=measure.steps,
        samples_seen=measure.samples_seen, wall_s=wall_s, train_wall_s=train_wall_s,
        samples_per_s=measure.samples_seen / train_wall_s if train_wall_s > 0 else math.nan,
        peak_rss_gib=host.peak_bytes() / GIB, peak_rss_delta_gib=host.peak_delta_bytes() / GIB,
        peak_gpu_gib=gpu.peak_bytes() / GIB if gpu else None, skipped=measure.skipped,
        data_wait_pct=measure.data_wait_pct, startup_s=measure.startup_s,
    )


def run_datascale(run: Runner, sizes: list[int], epochs: int = 1, repeats: int = 1,
                  device: str = "cpu", on_row: Callable[[DatascaleRow], None] | None = None
                  ) -> list[DatascaleRow]:
    """Every size ``repeats`` times, interleaved (size order within a repeat) so that drift in
    the machine's state spreads over all sizes instead of biasing the last one."""
    rows = []
    for repeat in range(repeats):
        for n in sorted(sizes):
            row = measure_size(run, n, epochs, repeat, device)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows


def _medians_by_size(rows: list[DatascaleRow], key: str) -> tuple[list[int], list[float]]:
    sizes = sorted({r.n_samples for r in rows})
    values = []
    for n in sizes:
        sample = [getattr(r, key) for r in rows if r.n_samples == n and getattr(r, key) is not None]
        values.append(stats.median(sample) if sample else None)
    return sizes, values


def analyze(rows: list[DatascaleRow]) -> dict:
    """Fits and flags over the per-size medians."""
    sizes, wall = _medians_by_size(rows, "train_wall_s")
    out: dict = {"sizes": sizes, "time_fit": None, "time_exponent": None, "superlinear_time": None,
                 "rss_fit": None, "rss_growth_rel": None, "rss_growth_gib": None,
                 "memory_grows_with_n": None, "gpu_growth_gib": None}
    if len(sizes) < 2:
        return out
    fit = stats.linear_fit(sizes, wall)
    out["time_fit"] = fit.as_dict()
    out["seconds_per_1k_samples"] = fit.slope * 1000
    out["time_exponent"] = stats.growth_exponent(sizes, wall)
    out["superlinear_time"] = stats.is_superlinear(sizes, wall)
    _, rss = _medians_by_size(rows, "peak_rss_delta_gib")
    out["rss_fit"] = stats.linear_fit(sizes, rss).as_dict()
    growth_gib = rss[-1] - rss[0]
    out["rss_growth_gib"] = growth_gib
    _, rss_abs = _medians_by_size(rows, "peak_rss_gib")
    out["rss_growth_rel"] = stats.relative_growth(sizes, rss_abs)
    grows = out["rss_growth_rel"] > MEMORY_GROWTH_REL and growth_gib * GIB > MEMORY_GROWTH_BYTES
    _, gpu = _medians_by_size(rows, "peak_gpu_gib")
    if all(v is not None for v in gpu):
        out["gpu_growth_gib"] = gpu[-1] - gpu[0]
        grows = grows or (out["gpu_growth_gib"] * GIB > MEMORY_GROWTH_BYTES
                          and stats.relative_growth(sizes, gpu) > MEMORY_GROWTH_REL)
    out["memory_grows_with_n"] = bool(grows)
    return out


def training_runner(job, device: str, progress: Callable[[str], None] | None = None) -> Runner:
    """A runner that trains ``job`` (a ``TrainJob``) on the first N samples for E epochs.

    The data is streamed by the loader with ``data.limit = N``; the steps are
    ``epochs * (N // batch_size)`` so every size sees its data the same number of times.
    Periodic evaluation and checkpoints are off; the trainer's final evaluation still runs,
    which is why the fit uses the trainer's own loop time rather than the whole run's.
    The trainer's own hardware monitor is off too: its folder is temporary, and the caller's
    monitor (``validate``, ``bench datascale``) already samples the whole sweep.
    ``run.compiles``: whether the job compiles on ``device`` (its first run would carry the compile).
    """
    def run(n_samples: int, epochs: int) -> RunMeasure:
        steps = max(1, epochs * (n_samples // job.train.batch_size))
        with tempfile.TemporaryDirectory(prefix="mmscale-datascale-") as out_dir:
            sized = dataclasses.replace(
                job,
                data=dataclasses.replace(job.data, limit=n_samples),
                train=dataclasses.replace(job.train, steps=steps, out_dir=out_dir, eval_every=0,
                                          checkpoint_every=0, trackers=[], device=device.split(":")[0],
                                          eval_samples=min(job.train.eval_samples, 64)),
            )
            if progress:
                progress(f"datascale: N={n_samples}, {steps} steps")
            result = train(sized, show_progress=False, monitor_interval_s=0.0)
        return RunMeasure(steps=result.steps, samples_seen=result.samples,
                          skipped=result.skipped_samples, train_wall_s=result.wall_s,
                          data_wait_pct=result.data_wait_pct, startup_s=result.startup_s or None)

    run.compiles = resolve_runtime(dataclasses.replace(job.train, device=device.split(":")[0])).compile
    return run


def warm_up(run: Runner, n_samples: int, device: str) -> DatascaleRow:
    """One untimed run before the sizes, so that a compiled job's compile and graph capture (paid
    once per process, then reused) land in no fitted point; its startup is reported apart."""
    return measure_size(run, n_samples, 1, -1, device)
