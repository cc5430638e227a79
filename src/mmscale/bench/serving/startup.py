"""What CUDA graphs cost the server at start: seconds to ready, device memory, graphs recorded.

Graphs are on by default on CUDA, up to batch 128 (``serve.config.CUDA_GRAPH_MAX_BATCH``), and the
shapes they record grow with ``--max-captions``. ``bench_startup`` starts ``mmscale serve`` once per
setting, in turn, and reports for each: seconds from spawn to ``/readyz`` answering 200, the device
memory in use once ready (NVML, the whole device: run it on an otherwise idle GPU) minus the idle
figure taken before the first start, and the graphs the server says it recorded. Ratios are
against the first setting.
"""

from __future__ import annotations

import re
import time

import pynvml

from mmscale.bench.load.spawn import SpawnedServer
from mmscale.environment import fingerprint

# key -> (label, extra serve arguments); the first run is the ratios' base
SETTINGS = {
    "cg": ("graphs, 16 captions", ["--cuda-graphs"]),
    "cgc4": ("graphs, 4 captions", ["--cuda-graphs", "--max-captions", "4"]),
    "none": ("no graphs", ["--no-cuda-graphs"]),
}
# the line ``ModelPredictor.use_graphs`` logs once its graphs are recorded
RECORDED = re.compile(r"CUDA graphs: recorded (\d+) of (\d+)")


def device_used_gib() -> float | None:
    """Device 0's memory in use (NVML), or None without a GPU."""
    try:
        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used / 2**30
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library or no device: the figure is absent, not zero
        return None


def server_args(preset: str, max_batch: int, frontends: int, cpu_smoke: bool) -> list[str]:
    """The ``mmscale serve`` arguments every setting shares (``cpu_smoke``: ``tiny`` on one CPU thread)."""
    out = ["--preset", "tiny" if cpu_smoke else preset, "--max-batch", str(max_batch),
           "--frontends", str(1 if cpu_smoke else frontends)]
    return out + (["--device", "cpu", "--cpu-threads", "1"] if cpu_smoke else ["--device", "cuda"])


def start_once(base_args: list[str], extra: list[str], idle_gib: float | None) -> dict:
    t0 = time.perf_counter()
    with SpawnedServer(base_args + extra, ready_timeout_s=900) as server:
        ready_s = time.perf_counter() - t0
        used = device_used_gib()
        found = RECORDED.search("".join(server.tail))
    return {"ready_s": ready_s, "memory_gib": None if used is None or idle_gib is None else used - idle_gib,
            "graphs": int(found.group(1)) if found else 0, "graph_shapes": int(found.group(2)) if found else 0}


def bench_startup(keys: list[str], base_args: list[str], say=print) -> dict:
    """One server start per setting of ``keys`` (from ``SETTINGS``), in turn: the rows, each with its
    ready time over the first's, and the conditions."""
    idle = device_used_gib()
    rows = []
    for key in keys:
        label, extra = SETTINGS[key]
        row = {"setting": label, "args": extra, **start_once(base_args, extra, idle)}
        rows.append(row)
        say(f"{label}: ready in {row['ready_s']:.1f} s, {row['graphs']} graphs")
    for row in rows:
        row["ready_vs_first"] = row["ready_s"] / rows[0]["ready_s"]
    return {"rows": rows, "idle_device_gib": idle, "server_args": base_args, "environment": fingerprint()}


def format_startup(rows: list[dict]) -> str:
    lines = [f"{'setting':38s} {'ready s':>8s} {'vs first':>8s} {'memory GiB':>11s} {'graphs':>7s}"]
    for row in rows:
        memory = f"{row['memory_gib']:.2f}" if row["memory_gib"] is not None else "-"
        lines.append(f"{row['setting']:38s} {row['ready_s']:8.1f} {row['ready_vs_first']:7.2f}x {memory:>11s} "
                     f"{row['graphs']:>3d}/{row['graph_shapes']:<3d}")
    return "\n".join(lines)
