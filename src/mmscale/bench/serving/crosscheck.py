"""Our load generator checked against ``wrk`` (Debian's package) on the same endpoint, payload and
concurrency, closed loop: throughput and latency percentiles should agree within 10%.

Both send the same single request (one JPEG, its captions in the query) over keep-alive
connections, one after another per connection. The server is spawned once and measured by both
tools in turn (ours, wrk, ours again), so drift between the runs shows up as their spread.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

from mmscale.bench.load.runner import LoadConfig, bench_load
from mmscale.bench.load.payload import build_payloads
from mmscale.bench.load.spawn import SpawnedServer

WRK_SCRIPT = """
local f = assert(io.open(os.getenv("MMSCALE_WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
"""
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
COMPARED = ("throughput_per_s", "p50_ms", "p90_ms", "p99_ms", "mean_ms")


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unparseable wrk duration {text!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """wrk --latency output -> throughput, p50/p90/p99 and max (ms), non-2xx count."""
    pct = {int(float(q)): parse_duration_ms(v) for q, v in re.findall(r"^\s+([\d.]+)%\s+(\S+)\s*$", output, re.M)}
    latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in ([\d.]+\w+)", output, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if not (rps and total and latency):
        raise ValueError(f"unexpected wrk output:\n{output}")
    return {"throughput_per_s": float(rps.group(1)), "requests": int(total.group(1)),
            "mean_ms": parse_duration_ms(latency.group(1)), "max_ms": parse_duration_ms(latency.group(3)),
            "p50_ms": pct.get(50), "p90_ms": pct.get(90), "p99_ms": pct.get(99),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0}


def run_wrk(url: str, path: str, body: bytes, concurrency: int, threads: int, duration_s: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body.bin").write_bytes(body)
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        cmd = ["wrk", "-t", str(min(threads, concurrency)), "-c", str(concurrency), "-d", f"{duration_s:g}s",
               "--latency", "-s", str(Path(tmp) / "post.lua"), url + path]
        env = {**os.environ, "MMSCALE_WRK_BODY": str(Path(tmp) / "body.bin")}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return {**parse_wrk(done.stdout), "command": " ".join(cmd), "raw": done.stdout}


def ours(url: str, concurrency: int, duration_s: float, processes: int, captions: int) -> dict:
    """One closed-loop window of our load generator: its row."""
    cfg = LoadConfig(url=url, concurrencies=[concurrency], window_s=duration_s, max_windows=1,
                     stable_windows=1, processes=processes, payloads=1, captions_per_request=captions,
                     warmup_s=0.5)
    (row,) = bench_load(cfg, server="batched", progress=False).rows
    return asdict(row)


def crosscheck(serve_args: list[str], concurrency: int, duration_s: float, captions: int, processes: int,
               wrk_threads: int) -> dict:
    """Ours, wrk, ours again against one spawned server: the mean of our two runs over wrk's figures."""
    payload = build_payloads("match", n=1, captions_per_request=captions)[0]
    with SpawnedServer(serve_args) as server:
        first = ours(server.url, concurrency, duration_s, processes, captions)
        wrk = run_wrk(server.url, payload.path, payload.body, concurrency, wrk_threads, duration_s)
        second = ours(server.url, concurrency, duration_s, processes, captions)
    mine = {k: (first[k] + second[k]) / 2 for k in COMPARED}
    result = {
        "concurrency": concurrency, "ours": mine, "ours_runs": [first, second],
        "wrk": {k: v for k, v in wrk.items() if k != "raw"}, "wrk_output": wrk["raw"],
        "throughput_ratio": mine["throughput_per_s"] / wrk["throughput_per_s"],
        "p50_ratio": mine["p50_ms"] / wrk["p50_ms"], "p99_ratio": mine["p99_ms"] / wrk["p99_ms"],
        "mean_ratio": mine["mean_ms"] / wrk["mean_ms"],
    }
    result["within_10pct"] = all(abs(result[k] - 1) <= 0.10 for k in ("throughput_ratio", "p50_ratio", "mean_ratio"))
    return result


def format_crosscheck(result: dict) -> str:
    lines = [f"{'':<10} {'req/s':>9} {'mean ms':>9} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9}"]
    for name, row in (("ours", result["ours"]), ("wrk", result["wrk"])):
        lines.append(f"{name:<10} {row['throughput_per_s']:>9.1f} {row['mean_ms']:>9.2f} {row['p50_ms']:>9.2f} "
                     f"{row['p90_ms']:>9.2f} {row['p99_ms']:>9.2f}")
    lines.append(f"ours / wrk: throughput {result['throughput_ratio']:.3f}, mean {result['mean_ratio']:.3f}, "
                 f"p50 {result['p50_ratio']:.3f}, p99 {result['p99_ratio']:.3f} "
                 f"({'within' if result['within_10pct'] else 'NOT within'} 10% on throughput, mean and p50)")
    return "\n".join(lines)
