"""What CUDA graphs cost the server at start: seconds to ready, device memory, graphs.

Why: graphs are on by default on CUDA, up to batch 128 (``serve.config.CUDA_GRAPH_MAX_BATCH``), and
the shapes they record grow with ``--max-captions``. This script starts ``mmscale serve`` once per
setting, in turn, in one run, and reports
for each: seconds from spawn to ``/readyz`` answering 200, the device memory in use once ready
(NVML, the whole device: run it on an otherwise idle GPU) minus the idle figure taken before the
first start, and the graphs the server says it recorded. Ratios are against the first setting.

    PYTHONPATH=src python3 benchmarks/serve_startup.py --preset base --out runs/serve_startup   # GPU
    PYTHONPATH=src python3 benchmarks/serve_startup.py --cpu-smoke --out runs/serve_startup     # CPU

The CPU smoke starts the ``tiny`` model without graphs (graphs need CUDA) and checks the plumbing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

# key -> (label, extra serve arguments); the first run is the ratios' base
SETTINGS = {
    "cg": ("graphs, 16 captions", ["--cuda-graphs"]),
    "cgc4": ("graphs, 4 captions", ["--cuda-graphs", "--max-captions", "4"]),
    "none": ("no graphs", ["--no-cuda-graphs"]),
}
RECORDED = re.compile(r"CUDA graphs: recorded (\d+) of (\d+)")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--max-batch", type=int, default=256, help="as serve_load.py runs the server")
    parser.add_argument("--frontends", type=int, default=4)
    parser.add_argument("--settings", default="cg,cgc4,none",
                        help="comma list, the first is the base of the ratios; from " + ",".join(SETTINGS))
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU, no graphs")
    parser.add_argument("--out", default="runs/serve_startup")
    return parser.parse_args(argv)


def device_used_gib() -> float | None:
    """Device 0's memory in use (NVML), or None without a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used / 2**30
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library or no device: the figure is absent, not zero
        return None


def start_once(base_args: list[str], extra: list[str], idle_gib: float | None) -> dict:
    from mmscale.bench.load_spawn import SpawnedServer

    t0 = time.perf_counter()
    with SpawnedServer(base_args + extra, ready_timeout_s=900) as server:
        ready_s = time.perf_counter() - t0
        used = device_used_gib()
        found = RECORDED.search("".join(server.tail))
    return {"ready_s": ready_s, "memory_gib": None if used is None or idle_gib is None else used - idle_gib,
            "graphs": int(found.group(1)) if found else 0, "graph_shapes": int(found.group(2)) if found else 0}


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    keys = ["none"] if args.cpu_smoke else [k for k in args.settings.split(",") if k]
    unknown = [k for k in keys if k not in SETTINGS]
    if unknown or not keys:
        raise SystemExit(f"--settings: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(SETTINGS)}")
    settings = dict(SETTINGS[k] for k in keys)
    base_args = ["--preset", "tiny" if args.cpu_smoke else args.preset, "--max-batch", str(args.max_batch),
                 "--frontends", str(1 if args.cpu_smoke else args.frontends)]
    base_args += ["--device", "cpu", "--cpu-threads", "1"] if args.cpu_smoke else ["--device", "cuda"]
    idle = device_used_gib()
    rows = []
    for label, extra in settings.items():
        row = {"setting": label, "args": extra, **start_once(base_args, extra, idle)}
        rows.append(row)
        print(f"{label}: ready in {row['ready_s']:.1f} s, {row['graphs']} graphs", flush=True)
    first = rows[0]
    print(f"\n{'setting':38s} {'ready s':>8s} {'vs first':>8s} {'memory GiB':>11s} {'graphs':>7s}")
    for row in rows:
        row["ready_vs_first"] = row["ready_s"] / first["ready_s"]
        memory = f"{row['memory_gib']:.2f}" if row["memory_gib"] is not None else "-"
        print(f"{row['setting']:38s} {row['ready_s']:8.1f} {row['ready_vs_first']:7.2f}x {memory:>11s} "
              f"{row['graphs']:>3d}/{row['graph_shapes']:<3d}")
    from mmscale.bench.environment import fingerprint

    Path(args.out).mkdir(parents=True, exist_ok=True)
    doc = {"rows": rows, "idle_device_gib": idle, "server_args": base_args, "environment": fingerprint()}
    (Path(args.out) / "serve_startup.json").write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
