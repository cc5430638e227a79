"""Multi-device scaling: the same training step on 1..N ranks through torchrun, DDP and FSDP2.

One torchrun launch per (world size, strategy) measures both regimes in the same process group:
weak scaling (per-rank batch fixed, so N ranks do N times the work) and strong scaling (global
batch fixed, split over the ranks). Efficiency is throughput on N over N times throughput on 1
(``stats.scaling_efficiency``).

Communication share is measured, not modelled: the same steps are timed again with gradient
synchronization turned off (DDP ``no_sync``, FSDP2 ``set_requires_gradient_sync(False)``); the
difference is the communication the overlap failed to hide. For FSDP2 the parameter
all-gathers still run without gradient sync, so its figure covers the reduce-scatter only. The
gather of ITC's rows from every rank (``contrastive_batch`` pairs) runs in both timings too, so
neither strategy's figure includes it.

Beside it, each row carries what there was to hide and how fast the link is (``scaling_comm``):
the bus bytes the strategy moves per step, the collectives' bus bandwidth measured in the same
process group, and the time the link needs for those bytes. And the host's side: how long the
step call took to return (``issue_ms``). When that is close to the step time, each rank waits
on its own host work (or on a device sync inside the step), not on the others, and a faster
link would not help.

On a CPU, 1 and 2 gloo processes run as a smoke test of the same code path.

    python -m mmscale.bench.scaling --worker ...   (what torchrun runs on each rank)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from mmscale import stats
from mmscale.bench import scaling_comm
from mmscale.bench.batchsweep import _read_status_kib
from mmscale.config.load import build
from mmscale.model import ModelConfig
from mmscale.strict_json import dumps, write_json
from mmscale.train.build import build_run
from mmscale.train.config import TrainConfig, TrainJob
from mmscale.train.contrastive import contrastive_batch
from mmscale.train.distributed import init_distributed, sharded_blocks
from mmscale.train.runtime import resolve_runtime
from mmscale.train.synthetic import synthetic_batch


@dataclass
class ScalingRow:
    """One (strategy, world size, regime) measurement, throughput summed over ranks."""

    strategy: str  # "ddp" or "fsdp"
    world_size: int
    regime: str  # "weak" (per-rank batch fixed) or "strong" (global batch fixed)
    per_rank_batch: int
    global_batch: int
    step_ms: float  # median over timed steps of the slowest rank
    samples_per_s: float  # global
    per_rank_samples_per_s: float
    step_ms_values: list[float]
    nosync_step_ms: float | None  # the same steps with gradient sync turned off
    comm_share: float | None  # (step - nosync) / step: exposed communication
    peak_mem_gib: float | None  # max over ranks: CUDA allocator peak, or host RSS on CPU
    efficiency: float | None = None  # filled by analyze(): vs world_size 1 of the same regime
    device: str = "cpu"
    issue_ms: float | None = None  # rank 0's median host time to issue the step: near step_ms = host-bound
    link_busbw_gbs: dict | None = None  # measured bus bandwidth of each collective in this group
    comm_bus_gb: float | None = None  # bus bytes the strategy moves per step (scaling_comm)
    comm_ms_at_link: float | None = None  # time the link needs for them at its measured bandwidth
    contrastive_batch: int | None = None  # pairs one ITC loss contrasts: every rank's micro-batch

    def as_dict(self) -> dict:
        return asdict(self)


def launch(world_size: int, strategy: str, model_cfg: dict, train_cfg: dict, per_rank_batch: int,
           global_batch: int, steps: int, warmup: int, device: str, out_dir: Path,
           timeout_s: float = 900) -> tuple[list[dict], list[dict]]:
    """Run one torchrun job; return its rows and the regimes it could not run (out of memory).
    A launch that fails as a whole raises RuntimeError with the rank's stderr tail."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / f"spec-{strategy}-{world_size}.json"
    result_path = out_dir / f"rows-{strategy}-{world_size}.json"
    spec_path.write_text(dumps({
        "model": model_cfg, "train": train_cfg, "strategy": strategy, "per_rank_batch": per_rank_batch,
        "global_batch": global_batch, "steps": steps, "warmup": warmup, "device": device,
        "out": str(result_path),
    }))
    env = dict(os.environ)
    if device == "cpu":
        env.setdefault("OMP_NUM_THREADS", "1")  # ranks share the cores; do not oversubscribe
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={world_size}", "-m", "mmscale.bench.scaling", "--worker", str(spec_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    # every launch's console is kept: warnings, recompilations (TORCH_LOGS) and NCCL's own lines
    log = out_dir / f"log-{strategy}-{world_size}.txt"
    log.write_text((proc.stdout or "") + (proc.stderr or ""))
    if proc.returncode != 0 or not result_path.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"torchrun {strategy} x{world_size} exited {proc.returncode} (whole log: {log}): {tail}")
    found = json.loads(result_path.read_text())
    return found["rows"], found["errors"]


def run_scaling(model_cfg, train_cfg, world_sizes: list[int], strategies: list[str],
                per_rank_batch: int, steps: int, warmup: int, device: str, work_dir: Path,
                on_row=None, strong_global_batch: int = 0) -> tuple[list[ScalingRow], list[dict]]:
    """Every (strategy, world size) launch; a failed launch is a recorded error, not an abort.

    Strong scaling holds the global batch at ``strong_global_batch``, or by default at
    ``per_rank_batch * max(world_sizes)``: every world size divides it evenly and the largest
    world runs the weak-scaling batch, but one rank must then fit the whole of it.
    """
    global_batch = strong_global_batch or per_rank_batch * max(world_sizes)
    rows, errors = [], []
    for strategy in strategies:
        if strategy == "fsdp" and train_cfg.weights == "bf16":
            errors.append({"strategy": strategy, "world_size": 0, "error": "train.weights=bf16 is not built "
                           "for FSDP2 (it gathers its weights in bf16 itself); run it with train.weights=fp32"})
            continue
        for world in sorted(world_sizes):
            splits = global_batch % world == 0 and global_batch >= world
            if not splits:
                errors.append({"strategy": strategy, "world_size": world, "regime": "strong",
                               "error": f"the strong-scaling global batch {global_batch} does not split "
                                        f"evenly over {world} ranks"})
            try:
                found, failed = launch(world, strategy, asdict(model_cfg), asdict(train_cfg), per_rank_batch,
                                       global_batch if splits else 0, steps, warmup, device, work_dir)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append({"strategy": strategy, "world_size": world, "error": str(exc)[-2000:]})
                continue
            errors += failed
            for raw in found:
                row = ScalingRow(**raw)
                rows.append(row)
                if on_row:
                    on_row(row)
    analyze(rows)
    return rows, errors


def analyze(rows: list[ScalingRow]) -> dict:
    """Fill each row's efficiency against world size 1 of the same strategy and regime."""
    summary = {}
    for row in rows:
        base = next((r for r in rows if r.strategy == row.strategy and r.regime == row.regime
                     and r.world_size == 1), None)
        if base is not None and base.samples_per_s > 0:
            row.efficiency = stats.scaling_efficiency(base.samples_per_s, row.samples_per_s, row.world_size)
    for row in rows:
        if row.world_size > 1 and row.efficiency is not None:
            key = f"{row.strategy}_{row.regime}_efficiency_x{row.world_size}"
            summary[key] = row.efficiency
    return summary


# -- the worker, run by torchrun on every rank ---------------------------------------------------

def _peak_mem_gib(device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30

    hwm = _read_status_kib("VmHWM")
    return hwm * 1024 / 2**30 if hwm else None


def _no_grad_sync(model):
    if hasattr(model, "no_sync"):
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(False)
        return _Resync(model)
    return contextlib.nullcontext()


class _Resync(contextlib.AbstractContextManager):
    def __init__(self, model):
        self.model = model

    def __exit__(self, *exc):
        self.model.set_requires_gradient_sync(True)
        return False


def time_steps(step_fn, batch, steps: int, warmup: int, device, sync_ctx=None,
                issue: list | None = None) -> list[float]:
    """Per-step wall times (ms); ``issue`` collects the host time until the step call returned."""
    for _ in range(warmup):
        with sync_ctx() if sync_ctx else contextlib.nullcontext():
            step_fn(*batch)
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # host-device sync: start from an idle device
        if dist.is_initialized():
            dist.barrier()  # ranks start the step together, so the slowest rank sets the time
        t0 = time.perf_counter()
        with sync_ctx() if sync_ctx else contextlib.nullcontext():
            step_fn(*batch)
        if issue is not None:
            issue.append((time.perf_counter() - t0) * 1e3)
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # host-device sync: the step's kernels are part of its time
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def slowest_rank(times: list[float], world: int) -> list[float]:
    """Per-step maximum over ranks (the step ends when the last rank ends)."""
    if world == 1:
        return times
    gathered = [None] * world
    dist.all_gather_object(gathered, times)
    return [max(col) for col in zip(*gathered)]


def run_regimes(measure, regimes: list[tuple[str, int]], strategy: str, world: int,
                recover=lambda: None) -> tuple[list[dict], list[dict]]:
    """Each regime's row; one that runs out of device memory is an error, and the next still runs.

    Strong scaling on one rank runs the whole global batch, the largest per-rank batch of the
    sweep: on a smaller GPU it may not fit while weak scaling does. Losing the weak row with it
    would leave every larger world without its baseline. (Across several ranks an out-of-memory
    error on one rank alone leaves the others in a collective; torchrun's timeout ends that launch.)
    """
    rows, errors = [], []
    for regime, per_rank in regimes:
        try:
            rows.append(measure(regime, per_rank))
            continue
        except torch.OutOfMemoryError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
            errors.append({"strategy": strategy, "world_size": world, "regime": regime,
                           "error": f"out of memory at per-rank batch {per_rank}: {first[:300]}"})
        recover()  # out of the except block: the error's traceback, which holds the batch, is gone
    return rows, errors


def worker(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    model_cfg = build(ModelConfig, spec["model"], prefix="model")
    train_cfg = build(TrainConfig, spec["train"], prefix="train")
    cuda = spec["device"].startswith("cuda")
    env = init_distributed("cuda" if cuda else "cpu")
    # the same step at every world size: the step graph and the flat update are one process only,
    # so they are off at world size 1 too, and the ratio measures the strategy alone
    train_cfg = dataclasses.replace(train_cfg, device="cuda" if cuda else "cpu", step_graph=False, flat_update=False,
                                    parallel=spec["strategy"] if env.active else "none")
    if spec["strategy"] == "fsdp" and train_cfg.weights == "auto":  # FSDP2 keeps fp32 weights: so does world 1
        train_cfg = dataclasses.replace(train_cfg, weights="fp32")
    runtime = resolve_runtime(train_cfg, env)
    device, precision = runtime.device, runtime.precision
    regimes = [("weak", spec["per_rank_batch"])]
    if spec["global_batch"]:  # 0: the launcher found it does not split over this many ranks
        regimes.append(("strong", spec["global_batch"] // env.world_size))
    # the job's batch sizes the ITC gather: the largest regime's micro-batch (ranks gather as many rows)
    accum = train_cfg.grad_accum
    micro = -(-max(per_rank for _, per_rank in regimes) // accum)
    train_cfg = dataclasses.replace(train_cfg, batch_size=micro * accum * env.world_size)
    run = build_run(TrainJob(model=model_cfg, train=train_cfg), runtime, schedule=False, compile_dynamic=False)
    model, step = run.wrapped, run.step
    block_params = sum(p.numel() for block in sharded_blocks(run.model) for p in block.parameters())
    root_params = sum(p.numel() for p in run.model.parameters()) - block_params
    gather_dtype = precision.sharded_param_dtype or torch.float32
    bus = scaling_comm.bus_bytes_per_step(spec["strategy"], env.world_size, block_params, root_params,
                                          gather_bytes=gather_dtype.itemsize)
    link = scaling_comm.measure_link(device, env.world_size, 256 if device.type == "cuda" else 8) if env.active else None

    def measure(regime: str, per_rank: int) -> dict:
        batch = synthetic_batch(model_cfg, per_rank, device, seed=env.rank)
        issue: list[float] = []
        times = slowest_rank(time_steps(step, batch, spec["steps"], spec["warmup"], device, issue=issue),
                             env.world_size)
        nosync = None
        if env.active:
            nosync = slowest_rank(time_steps(step, batch, spec["steps"], 1, device,
                                             sync_ctx=lambda: _no_grad_sync(model)), env.world_size)
        step_ms = stats.median(times)
        nosync_ms = stats.median(nosync) if nosync else None
        peak = _peak_mem_gib(device)
        if env.active:
            peaks = [None] * env.world_size
            dist.all_gather_object(peaks, peak)
            peak = max((p for p in peaks if p is not None), default=None)
        global_batch = per_rank * env.world_size
        return ScalingRow(
            strategy=spec["strategy"], world_size=env.world_size, regime=regime,
            per_rank_batch=per_rank, global_batch=global_batch, step_ms=step_ms,
            samples_per_s=global_batch / (step_ms / 1e3),
            per_rank_samples_per_s=per_rank / (step_ms / 1e3),
            step_ms_values=[round(t, 3) for t in times], nosync_step_ms=nosync_ms,
            comm_share=max(0.0, (step_ms - nosync_ms) / step_ms) if nosync_ms else None,
            peak_mem_gib=peak, device=str(device.type), issue_ms=stats.median(issue),
            link_busbw_gbs=link, comm_bus_gb=sum(bus.values()) / 1e9 if bus else None,
            comm_ms_at_link=scaling_comm.ms_at_link(bus, link) if link else None,
            contrastive_batch=contrastive_batch(per_rank // train_cfg.grad_accum, env),
        ).as_dict()

    def recover() -> None:
        run.optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    rows, errors = run_regimes(measure, regimes, spec["strategy"], env.world_size, recover)
    if env.is_main:
        write_json(spec["out"], {"rows": rows, "errors": errors})
    if env.active:
        dist.barrier()
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scaling benchmark worker (run by torchrun)")
    parser.add_argument("--worker", required=True, metavar="SPEC_JSON")
    args = parser.parse_args(argv)
    worker(args.worker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
