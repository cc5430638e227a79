"""Batch-size sweep: memory per batch, the first out-of-memory, and the throughput knee.

The reference method asks whether memory grows linearly with the batch (if not: shard or use
mixed precision). We double the batch until the first out-of-memory, bisect between the last
batch that fitted and the first that did not, fit ``peak = bytes_per_sample * batch + fixed``
on the doubling points only, and check the batch that fit predicts against the one found.

An OOM is caught, recorded as a row and freed; the process goes on to the next batch or
variant. On a CPU there is no allocation failure to catch before the kernel's OOM killer, so
a configured memory cap turns "peak host memory above the cap" into a simulated OOM; the rows
say ``memory_kind="host_rss"`` and ``oom_simulated=True`` so the report can say so.
"""

from __future__ import annotations

import dataclasses
import gc
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from mmscale import stats
from mmscale.host_heap import release_host_heap
from mmscale.train.build import build_run
from mmscale.train.config import TrainJob
from mmscale.train.runtime import resolve_runtime
from mmscale.train.synthetic import synthetic_batch

GIB = 2**30
StepFactory = Callable[[int], Callable[[], None]]


class SimulatedOOM(MemoryError):
    """Peak memory of a step went over the configured cap (how a CPU run emulates an OOM)."""


def is_oom(exc: BaseException) -> bool:
    """True for a CUDA allocation failure, a host ``MemoryError`` or a simulated one."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    # Some kernels (cuBLAS workspace, NCCL) raise a plain RuntimeError with this text.
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory() -> None:
    """Drop what a failed step left behind so the next batch starts from the same baseline."""
    gc.collect()
    release_host_heap()  # so that the next point's RSS baseline is honest
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # host-device sync: let freed blocks return before emptying
        torch.cuda.empty_cache()


def _read_status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


class PeakMemory:
    """Peak memory of the enclosed block: CUDA allocator peak when on a GPU, else host RSS.

    Host: Linux keeps a high-water mark of resident memory (VmHWM) that writing ``5`` to
    ``/proc/self/clear_refs`` resets, so the peak is exact even for allocations freed before
    the block ends (tracemalloc does not see torch's allocator; sampling RSS misses spikes).
    Where the reset is refused, the peak since process start is used and ``exact`` is False.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.kind = "gpu_allocated" if device.startswith("cuda") else "host_rss"
        self.baseline_bytes = 0
        self.exact = True

    def __enter__(self) -> "PeakMemory":
        if self.kind == "gpu_allocated":
            torch.cuda.synchronize()  # host-device sync: baseline after pending frees
            torch.cuda.reset_peak_memory_stats()
            self.baseline_bytes = torch.cuda.memory_allocated()
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.exact = False
            self.baseline_bytes = (_read_status_kib("VmRSS") or 0) * 1024
        return self

    def __exit__(self, *exc) -> None:
        return None

    def peak_bytes(self) -> int:
        """Peak since entering, absolute (includes what was resident before the block)."""
        if self.kind == "gpu_allocated":
            return int(torch.cuda.max_memory_allocated())
        return (_read_status_kib("VmHWM") or 0) * 1024

    def peak_delta_bytes(self) -> int:
        return max(self.peak_bytes() - self.baseline_bytes, 0)


def gpu_capacity_bytes(device: str) -> int | None:
    """Memory this process can still allocate plus what torch already holds: the OOM ceiling."""
    if not device.startswith("cuda"):
        return None

    free, _total = torch.cuda.mem_get_info()
    return int(free + torch.cuda.memory_reserved())


@dataclass
class BatchRow:
    """One batch size of one variant."""

    variant: str
    batch_size: int
    phase: str  # "double" (the doubling ladder) or "bisect" (between last fit and first OOM)
    status: str  # "ok", "oom" or "error"
    memory_kind: str  # "gpu_allocated" (absolute allocator peak) or "host_rss" (peak RSS delta)
    peak_bytes: int | None = None
    step_ms: float | None = None  # median over the timed steps
    samples_per_s: float | None = None
    step_ms_values: list[float] = field(default_factory=list)
    oom_simulated: bool = False
    error: str | None = None
    unallocated_reserved_bytes: int | None = None  # at a CUDA OOM: cached by the allocator, not in use

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SweepSettings:
    start_batch: int = 8
    max_batch: int = 1024
    warmup_steps: int = 1
    timed_steps: int = 3
    bisect_steps: int = 3  # bisection probes after the first OOM (0 turns bisection off)
    memory_cap_bytes: int | None = None  # simulated OOM above this peak (host: RSS delta)
    device: str = "cpu"


def measure_batch(make_step: StepFactory, variant: str, batch_size: int, phase: str,
                  settings: SweepSettings) -> BatchRow:
    """Build the step for ``batch_size``, warm up, time ``timed_steps`` steps, record the peak."""
    free_memory()  # what earlier work freed must leave RSS before the baseline is read
    meter = PeakMemory(settings.device)
    row = BatchRow(variant, batch_size, phase, "ok", meter.kind)
    cuda = settings.device.startswith("cuda")
    step = None
    try:
        with meter:
            step = make_step(batch_size)
            for _ in range(settings.warmup_steps):
                step()
            times_ms = []
            for _ in range(settings.timed_steps):
                t0 = time.perf_counter()
                step()
                if cuda:
                    torch.cuda.synchronize()  # host-device sync: the step's time includes its kernels
                times_ms.append((time.perf_counter() - t0) * 1e3)
                _check_cap(meter, settings)
            if not settings.timed_steps:
                _check_cap(meter, settings)
        peak = meter.peak_bytes() if meter.kind == "gpu_allocated" else meter.peak_delta_bytes()
        row.peak_bytes = peak
        row.step_ms_values = [round(t, 3) for t in times_ms]
        if times_ms:
            row.step_ms = stats.median(times_ms)
            row.samples_per_s = batch_size / (row.step_ms / 1e3)
    except Exception as exc:  # an OOM is a result here; anything else is recorded, not raised
        row.status = "oom" if is_oom(exc) else "error"
        row.oom_simulated = isinstance(exc, SimulatedOOM)
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        row.unallocated_reserved_bytes = oom_unallocated_bytes(str(exc))
        if row.oom_simulated:
            row.peak_bytes = meter.peak_delta_bytes()
        reset = getattr(make_step, "reset", None)
        if reset is not None:
            reset()  # a step that died mid-backward leaves partial gradients behind
    finally:
        del step
        free_memory()
    return row


_UNALLOCATED = re.compile(r"([\d.]+) (GiB|MiB|KiB) is reserved by PyTorch but unallocated")
_UNIT = {"GiB": 2**30, "MiB": 2**20, "KiB": 2**10}


def oom_unallocated_bytes(message: str) -> int | None:
    """Bytes the caching allocator held but had not handed out when CUDA ran out of memory.

    Read from PyTorch's OOM message ("... and 16.80 GiB is reserved by PyTorch but unallocated"),
    the only place that figure exists at the moment of failure: once the exception unwinds, the
    step's tensors are freed. A large value means fragmentation, not the model, set the limit.
    """
    match = _UNALLOCATED.search(message)
    return int(float(match.group(1)) * _UNIT[match.group(2)]) if match else None


def _check_cap(meter: PeakMemory, settings: SweepSettings) -> None:
    if settings.memory_cap_bytes is None:
        return
    peak = meter.peak_bytes() if meter.kind == "gpu_allocated" else meter.peak_delta_bytes()
    if peak > settings.memory_cap_bytes:
        raise SimulatedOOM(
            f"peak {peak / GIB:.3f} GiB over the configured cap "
            f"{settings.memory_cap_bytes / GIB:.3f} GiB"
        )


def sweep(make_step: StepFactory, variant: str, settings: SweepSettings,
          on_row: Callable[[BatchRow], None] | None = None) -> list[BatchRow]:
    """Doubling ladder from ``start_batch`` to the first OOM, then bisection below it."""
    rows: list[BatchRow] = []

    def run(batch: int, phase: str) -> BatchRow:
        row = measure_batch(make_step, variant, batch, phase, settings)
        rows.append(row)
        if on_row:
            on_row(row)
        return row

    last_ok, first_oom = None, None
    batch = settings.start_batch
    while batch <= settings.max_batch:
        row = run(batch, "double")
        if row.status == "error":
            return rows  # not a memory limit: bisecting would only repeat the failure
        if row.status == "oom":
            first_oom = batch
            break
        last_ok = batch
        batch *= 2
    if first_oom is not None and last_ok is not None:
        low, high = last_ok, first_oom
        for _ in range(settings.bisect_steps):
            mid = (low + high) // 2
            if mid in (low, high):
                break
            row = run(mid, "bisect")
            if row.status == "ok":
                low = mid
            elif row.status == "oom":
                high = mid
            else:
                break
    return rows


def analyze(rows: list[BatchRow], capacity_bytes: int | None) -> dict:
    """Memory fit, predicted vs found max batch, throughput knee, for one variant's rows.

    The fit uses the doubling points only, so the bisection independently checks the
    prediction. For host memory (a delta over the process baseline) the capacity is the cap.
    """
    ok = sorted((r for r in rows if r.status == "ok" and r.peak_bytes is not None),
                key=lambda r: r.batch_size)
    ooms = sorted(r.batch_size for r in rows if r.status == "oom")
    fit_rows = [r for r in ok if r.phase == "double"]
    out: dict = {
        "found_max_batch": ok[-1].batch_size if ok else None,
        "first_oom_batch": min((b for b in ooms if not ok or b > ok[-1].batch_size), default=None),
        "capacity_bytes": capacity_bytes,
        "fit": None, "bytes_per_sample": None, "fixed_bytes": None,
        "predicted_max_batch": None, "prediction_error_rel": None,
        "knee_batch": None, "max_samples_per_s": None, "linear_memory": None,
        "unallocated_at_first_oom_bytes": None,
        # a failure that is not a memory limit ends the ladder: the found max is then a floor
        "error_batch": next((r.batch_size for r in rows if r.status == "error"), None),
        "error": next((r.error for r in rows if r.status == "error"), None),
    }
    if out["first_oom_batch"] is not None:
        out["unallocated_at_first_oom_bytes"] = next(
            r.unallocated_reserved_bytes for r in rows if r.status == "oom" and r.batch_size == out["first_oom_batch"])
    if len({r.batch_size for r in fit_rows}) >= 2:
        fit = stats.linear_fit([r.batch_size for r in fit_rows], [r.peak_bytes for r in fit_rows])
        out.update(fit=fit.as_dict(), bytes_per_sample=fit.slope, fixed_bytes=fit.intercept)
        # Linear enough when the line explains 98% of the variance (the reference's question);
        # two points always fit a line, so the question needs three.
        out["linear_memory"] = fit.r2 >= 0.98 and fit.slope > 0 if fit.n_points >= 3 else None
        if capacity_bytes and fit.slope > 0:
            predicted = int(fit.solve_for_x(capacity_bytes))
            out["predicted_max_batch"] = predicted
            if out["found_max_batch"] and out["first_oom_batch"]:
                out["prediction_error_rel"] = predicted / out["found_max_batch"] - 1.0
    timed = [r for r in ok if r.samples_per_s]
    if timed:
        out["knee_batch"] = stats.knee([r.batch_size for r in timed], [r.samples_per_s for r in timed])
        out["max_samples_per_s"] = max(r.samples_per_s for r in timed)
    return out


# -- the model's training step as the swept workload ---------------------------------------------

# What-if variants the reference method suggests when memory does not fit: each is a set of
# TrainConfig fields over the job's own. FSDP needs a process group of several ranks: on one
# device it shards over nothing, so it is measured by the scaling benchmark under torchrun.
VARIANTS: dict[str, dict] = {
    # fp32 rows pin fp32 weights (a job's train.weights=bf16 would make them bf16 models); bf16 rows
    # keep the job's weights, so they measure what the job would train
    "fp32": {"precision": "fp32", "activation_checkpointing": False, "weights": "fp32"},
    "bf16": {"precision": "bf16", "activation_checkpointing": False},
    "bf16+ckpt": {"precision": "bf16", "activation_checkpointing": True},
    "fp32+ckpt": {"precision": "fp32", "activation_checkpointing": True, "weights": "fp32"},
    "fsdp": {"precision": "bf16", "activation_checkpointing": False, "parallel": "fsdp", "weights": "fp32"},
}


def variant_unavailable_reason(name: str, device: str, world_size: int = 1) -> str | None:
    """Why a variant cannot run here (None when it can)."""
    if name not in VARIANTS:
        return f"unknown variant '{name}' (known: {', '.join(VARIANTS)})"
    if VARIANTS[name].get("parallel") == "fsdp" and world_size < 2:
        return ("FSDP2 shards parameters, gradients and optimizer state over ranks; with one "
                "process there is nothing to shard. Per-rank memory under FSDP2 is measured by "
                "`mmscale bench scaling --strategies fsdp` on 2+ GPUs")
    return None


def model_step_factory(model_cfg, train_cfg, variant: str, device: str) -> StepFactory:
    """One optimizer step of the real model on a synthetic batch, for each batch size asked.

    The model and optimizer are built once per variant and warmed with a batch of 2 (the smallest
    with a pair to contrast), so that AdamW's lazily allocated state is part of every point's
    baseline rather than the first's.
    """
    fields = {k: v for k, v in VARIANTS[variant].items() if k != "parallel"}
    # the step each batch size runs is the one training would run, less the CUDA graph: a graph
    # captured per swept size would hold every size's memory at once
    cfg = dataclasses.replace(train_cfg, device=torch.device(device).type, step_graph=False, **fields)
    runtime = resolve_runtime(cfg)
    run = build_run(TrainJob(model=model_cfg, train=cfg), runtime, schedule=False)
    optimizer, train_step = run.optimizer, run.step

    def batch(batch_size: int) -> tuple[torch.Tensor, ...]:
        tensors = synthetic_batch(model_cfg, batch_size, device)
        return mark_batch_dynamic(tensors) if runtime.compile else tensors

    train_step(*batch(2))

    def make(batch_size: int) -> Callable[[], None]:
        pixels, ids, mask = batch(batch_size)
        return lambda: train_step(pixels, ids, mask)

    make.reset = lambda: optimizer.zero_grad(set_to_none=True)
    return make


def mark_batch_dynamic(tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Ask for a symbolic batch dimension, so that one compile serves every swept size.

    Weakly (``maybe_mark_dynamic``): where the compiled code pins the batch to one size, that size
    recompiles; a strict ``mark_dynamic`` turned the same case into a ConstraintViolationError
    that ended the variant's sweep (on an H100 at batch 256).
    """
    for tensor in tensors:
        torch._dynamo.maybe_mark_dynamic(tensor, 0)
    return tensors
