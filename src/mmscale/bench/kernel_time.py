"""Where a step's device time goes: the kernels of a ``torch.profiler`` trace summed by kind.

Counting before optimizing needs the split of a step into matmuls, attention, norms, GELU,
other elementwise work and the optimizer, and the time no kernel runs at all (host gaps:
launch overhead, syncs). The trace is read from its Chrome-trace export rather than from the
profiler's Python event objects, whose fields differ between torch versions; the export's
``cat`` and ``name`` fields are what Perfetto shows, so the table can be checked by eye.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

# first match wins: attention before matmuls (CUTLASS attention kernels say "cutlass"), matmul
# templates before the generic Inductor rule
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("attention", r"fmha|flash|attention|sdpa|cudnn_generated"),
    ("matmul", r"nvjet|gemm|cutlass|xmma|splitkreduce|cublas|triton_tem_"),
    ("layer_norm", r"layer_norm|layernorm"),
    ("gelu", r"gelu"),
    ("optimizer", r"adam|multi_tensor_apply|foreach"),
    ("conv", r"conv|implicit_convolve|wgrad|dgrad"),
    ("elementwise", r"^triton_|elementwise|reduce_kernel|vectorized"),
    ("copy_memset", r"^memcpy|^memset|copy_kernel"),
)
_COMPILED = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in CATEGORIES)
DEVICE_EVENT_KINDS = ("kernel", "gpu_memcpy", "gpu_memset")
TOP_KERNELS = 12  # the longest kernels by name: what a category's time is made of
NAME_CHARS = 160  # templated C++ kernel names run to thousands of characters


def category(kernel_name: str) -> str:
    """The kind of one kernel, from its name; ``other`` when no rule matches."""
    for name, pattern in _COMPILED:
        if pattern.search(kernel_name):
            return name
    return "other"


def busy_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: time some kernel ran, overlaps counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def kernel_breakdown(events: list[dict], steps: int, wall_ms_per_step: float,
                     kinds: tuple[str, ...] = DEVICE_EVENT_KINDS, top: int = TOP_KERNELS) -> dict:
    """Per-step milliseconds by category, the busy time, the host gap (wall minus busy), and the
    ``top`` kernel names by time (a category says where to look; the names say which kernels).

    ``events`` are Chrome-trace events (``cat``, ``name``, ``ts`` and ``dur`` in microseconds);
    only those whose ``cat`` is in ``kinds`` count.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    by_category: dict[str, float] = {}
    counts: dict[str, int] = {}
    intervals = []
    by_name: dict[str, list] = {}  # name -> [kind, total us, count, first launch's grid, its event, launchers]
    calls = {(e.get("args") or {}).get("correlation"): e for e in events if e.get("cat") == "cuda_runtime"}
    ops = {(e.get("args") or {}).get("External id"): str(e.get("name", "")) for e in events
           if e.get("cat") == "cpu_op" and (e.get("args") or {}).get("External id") is not None}
    for event in events:
        if event.get("cat") not in kinds or "dur" not in event:
            continue
        name = str(event.get("name", ""))
        kind = category(name)
        by_category[kind] = by_category.get(kind, 0.0) + float(event["dur"])
        counts[kind] = counts.get(kind, 0) + 1
        # the launch grid tells same-named kernels' callers apart (a ViT block's from a BERT layer's)
        grid = (event.get("args") or {}).get("grid")
        entry = by_name.setdefault(name[:NAME_CHARS], [kind, 0.0, 0, grid, event, {}])
        entry[1] += float(event["dur"])
        entry[2] += 1
        op = launching_op(event, calls, ops)
        if op is not None:  # same-named kernels (every memset) split by the op that launched each
            tally = entry[5].setdefault(op, [0.0, 0])
            tally[0] += float(event["dur"])
            tally[1] += 1
        intervals.append((float(event["ts"]), float(event["ts"]) + float(event["dur"])))
    busy_ms = busy_us(intervals) / 1000 / steps
    spans = [e for e in events if e.get("cat") in HOST_SPANS and "dur" in e]
    return {
        "ms": {k: v / 1000 / steps for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
        "kernels_per_step": {k: counts[k] / steps for k in counts},
        "sum_ms": sum(by_category.values()) / 1000 / steps,
        "busy_ms": busy_ms,
        "wall_ms": wall_ms_per_step,
        "host_gap_ms": max(0.0, wall_ms_per_step - busy_ms),
        "top": [{"name": name, "kind": kind, "ms": us / 1000 / steps, "per_step": n / steps,
                 "grid": grid, "launched_by": launched_by(first, calls, spans),
                 "launchers": [{"op": op, "ms": t_us / 1000 / steps, "per_step": t_n / steps}
                               for op, (t_us, t_n) in sorted(tally.items(), key=lambda kv: -kv[1][0])[:LAUNCHERS]]}
                for name, (kind, us, n, grid, first, tally) in sorted(by_name.items(), key=lambda kv: -kv[1][1])[:top]],
    }


LAUNCHERS = 4  # ops listed per kernel name, by their launches' time


def launching_op(kernel: dict, calls: dict, ops: dict) -> str | None:
    """The host op that launched ``kernel``: its ``correlation`` id names the runtime call, whose
    ``External id`` names the innermost op around it (the call's own name where the trace has no
    such op); None without a runtime call (a CPU trace)."""
    call = calls.get((kernel.get("args") or {}).get("correlation"))
    if call is None:
        return None
    return ops.get((call.get("args") or {}).get("External id"), str(call.get("name", "")))


HOST_SPANS = ("cpu_op", "user_annotation", "python_function")
LAUNCH_CHAIN = 3  # innermost host ops named per kernel


def launched_by(kernel: dict, calls: dict, spans: list[dict]) -> list[str]:
    """The host ops (outer to inner, the last ``LAUNCH_CHAIN``) around the runtime call that
    launched ``kernel``, then the call itself.

    The kernel's ``correlation`` id names the call in ``calls`` (``cudaLaunchKernel``, or
    ``cudaGraphLaunch`` for a replayed graph, whose kernels all name the replay); the ``spans``
    (host ops) enclosing that call on its thread say which code asked for the kernel
    (``aten::linalg_vector_norm`` inside ``clip_grad_norm_``, say). Empty when the trace holds no
    such call (a CPU trace)."""
    call = calls.get((kernel.get("args") or {}).get("correlation"))
    if call is None:
        return []
    at, thread = float(call["ts"]), call.get("tid")
    around = sorted((e for e in spans if e.get("tid") == thread and float(e["ts"]) <= at <= float(e["ts"]) + float(e["dur"])),
                    key=lambda e: (float(e["ts"]), -float(e["dur"])))
    return [str(e.get("name", ""))[:NAME_CHARS] for e in around][-LAUNCH_CHAIN:] + [str(call.get("name", ""))]


def profile_steps(step, sync, steps: int = 5, kinds: tuple[str, ...] = DEVICE_EVENT_KINDS,
                  trace_path: str | Path | None = None, top: int = TOP_KERNELS) -> dict:
    """Run ``step`` ``steps`` times under the profiler (device synced around the window) and
    break the trace down; ``trace_path`` keeps the Chrome trace (opens in Perfetto)."""
    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    sync()
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        wall_ms = 1000 * (time.perf_counter() - started) / steps
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(trace_path) if trace_path else Path(tmp) / "trace.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text()).get("traceEvents", [])
    return kernel_breakdown(events, steps, wall_ms, kinds, top)


def format_breakdown(rows: dict[str, dict]) -> str:
    """One line per variant: ms per step by category, busy, wall, host gap."""
    kinds = [name for name, _ in CATEGORIES] + ["other"]
    present = [k for k in kinds if any(k in r["ms"] for r in rows.values())]
    header = f"{'variant':<28}" + "".join(f"{k[:11]:>12}" for k in present)
    header += f"{'busy':>9}{'wall':>9}{'host gap':>10}"
    lines = ["kernel ms per step (profiled steps):", header]
    for variant, r in rows.items():
        line = f"{variant:<28}" + "".join(f"{r['ms'].get(k, 0.0):>12.2f}" for k in present)
        lines.append(line + f"{r['busy_ms']:>9.2f}{r['wall_ms']:>9.2f}{r['host_gap_ms']:>10.2f}")
    for variant, r in rows.items():
        if r.get("top"):
            lines.append(f"longest kernels, {variant} (ms per step, launches per step, kind, name, grid):")
            for k in r["top"]:
                lines.append(f"  {k['ms']:>7.2f} {k['per_step']:>5g}  {k['kind']:<11} {k['name'][:100]}"
                             f"  {k.get('grid') or ''}")
                if k.get("launched_by"):
                    lines.append(f"{'':>27}launched by: {' > '.join(n[:60] for n in k['launched_by'])}")
                if len(k.get("launchers") or []) > 1:
                    lines.append(f"{'':>27}by op: " + ", ".join(
                        f"{o['op'][:40]} ({o['per_step']:g}/step, {o['ms']:.2f} ms)" for o in k["launchers"]))
    return "\n".join(lines)
