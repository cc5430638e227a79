"""The instrumented training loop of the analyzer, and adapters from each input path's batches.

Every input path (ours with CPU decode, ours with GPU decode, the reference dataset in a
DataLoader, the reference per-image loop) feeds the same ``TrainStep`` through ``run_steps``;
an adapter turns its batch into device tensors, marking ``h2d`` and ``decode`` on the way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from mmscale.bench.pipeline.stages import StageClock, StepTiming, instrument, remove_hooks
from mmscale.bench.pipeline.verdict import idle_fraction
from mmscale.data.normalize import to_model_input


def ours_to_device(batch, device: torch.device, clock: StageClock):
    """``Batch`` (uint8 images, pinned when CUDA) -> model input; normalization on the device."""
    clock.mark("h2d")
    images = batch.images.to(device, non_blocking=True)
    ids = batch.input_ids.to(device, non_blocking=True)
    mask = batch.attention_mask.to(device, non_blocking=True)
    clock.mark("decode")  # CPU decode: normalize only; GPU decode: nvjpeg ran in the prefetch
    pixels = to_model_input(images, device)
    return pixels, ids, mask, len(batch)


def reference_to_device(batch: dict, device: torch.device, clock: StageClock):
    """The reference dataset's dict batches: float32 pixels, already normalized on the CPU."""
    clock.mark("h2d")
    pixels = batch["pixel_values"].to(device, non_blocking=True)  # 4x the bytes of uint8
    ids = batch["input_ids"].to(device, non_blocking=True)
    mask = batch["attention_mask"].to(device, non_blocking=True)
    clock.mark("decode")
    return pixels, ids, mask, pixels.shape[0]


def synthetic_to_device(batch, device: torch.device, clock: StageClock):
    """Synthetic (pixels, ids, mask) already on the device: no input stages to speak of."""
    clock.mark("h2d")
    clock.mark("decode")
    pixels, ids, mask = batch
    return pixels, ids, mask, pixels.shape[0]


@dataclass
class RunResult:
    steps: list[StepTiming]
    wall_s: float  # measured steps only, host clock, including every sync
    samples: int
    extra: dict = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s if self.wall_s > 0 else 0.0


def step_is_compiled(train_step) -> bool:
    """Whether ``train_step`` runs compiled or as a CUDA graph: per-module hooks cannot time it."""
    inner = getattr(train_step, "step", train_step)  # a GraphedTrainStep wraps a TrainStep
    return inner is not train_step or inner.forward is not inner.model


def run_steps(batches, to_device, train_step, device: torch.device, steps: int, warmup: int = 2,
              hooks: bool = True, on_batch=None, on_timed_start=None) -> RunResult:
    """Run ``warmup + steps`` training steps, timing stages of the last ``steps``.

    ``batches`` must yield at least ``warmup + steps`` batches (callers pass an endless stream).
    ``hooks=False`` times whole steps only (compiled models: hooks would break the graph).
    ``on_batch(batch, clock)`` sees each raw batch (worker-stage collection, pin timing).
    ``on_timed_start()`` is called once, after warm-up, just before the first timed step.
    """
    device = torch.device(device)
    clock = StageClock(device)
    model = train_step.model
    handles = instrument(model, train_step.optimizer, clock) if hooks else []
    timings: list[StepTiming] = []
    iterator = iter(batches)
    try:
        for k in range(warmup + steps):
            if k == warmup:
                if on_timed_start is not None:
                    on_timed_start()
                wall_start = time.perf_counter()
            clock.begin_step("data_wait")
            batch = next(iterator)
            if on_batch is not None:
                on_batch(batch, clock)
            pixels, ids, mask, n = to_device(batch, device, clock)
            # forward glue until the first encoder hook; with no hooks, the whole compiled step
            clock.mark("loss" if hooks else "compiled_step")
            train_step(pixels, ids, mask)
            timing = clock.end_step(samples=n)
            if k >= warmup:
                timings.append(timing)
        wall_s = time.perf_counter() - wall_start
    finally:
        remove_hooks(handles)
    return RunResult(timings, wall_s, sum(t.samples for t in timings))


def cycle(make_iterable):
    """An endless stream of batches: a fresh pass each time one ends."""
    while True:
        produced = 0
        for batch in make_iterable():
            produced += 1
            yield batch
        if produced == 0:
            raise RuntimeError("the input produced no batch (dataset smaller than one batch?)")


def profile_steps(batches, to_device, train_step, device: torch.device, steps: int = 3,
                  trace_dir: str | None = None) -> dict:
    """Run ``steps`` steps under ``torch.profiler``: GPU idle fraction from kernel intervals, and
    the Chrome/Perfetto trace when ``trace_dir`` is given. Returns what was measured and why not."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    iterator = iter(batches)
    clock = StageClock("cpu")
    clock.enabled = False
    train_step(*to_device(next(iterator), device, clock)[:3])  # warm: allocator, lazy init
    if cuda:
        torch.cuda.synchronize()  # host-device sync: profile from an idle device
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function("mmscale_step"):
                pixels, ids, mask, _ = to_device(next(iterator), device, clock)
                train_step(pixels, ids, mask)
                if cuda:
                    torch.cuda.synchronize()  # host-device sync: the step window ends when the GPU is done
    out: dict = {"profiled_steps": steps, "trace": None, "gpu_idle_frac": None}
    if trace_dir:
        path = Path(trace_dir)
        path.mkdir(parents=True, exist_ok=True)
        out["trace"] = str(path / "pipeline_trace.json")
        prof.export_chrome_trace(out["trace"])
    if not cuda:
        out["gpu_idle_note"] = "no GPU: idle fraction not applicable"
        return out
    events = prof.events()
    windows = [(e.time_range.start, e.time_range.end) for e in events if e.name == "mmscale_step"]
    kernels = [(e.time_range.start, e.time_range.end) for e in events
               if e.device_type == torch.autograd.DeviceType.CUDA]
    if windows and kernels:
        out["gpu_idle_frac"] = idle_fraction(kernels, windows)
        out["kernels"] = len(kernels)
    else:
        out["gpu_idle_note"] = f"profiler saw {len(kernels)} kernels in {len(windows)} step windows"
    return out
