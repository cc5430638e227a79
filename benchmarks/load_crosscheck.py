"""Cross-check our load generator against ``wrk`` (Debian's package) on the same endpoint, payload
and concurrency, closed loop: throughput and latency percentiles should agree within 10%.

    PYTHONPATH=src python3 benchmarks/load_crosscheck.py --preset base --concurrency 64 --out runs/crosscheck
    PYTHONPATH=src python3 benchmarks/load_crosscheck.py --cpu-smoke --out runs/crosscheck

Both send the same single request (one JPEG, its captions in the query) over keep-alive
connections, one after another per connection. The server is spawned once and measured by both
tools in turn (ours, wrk, ours again), so drift between the runs shows up as their spread.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from mmscale.strict_json import write_json

WRK_SCRIPT = """
local f = assert(io.open(os.getenv("MMSCALE_WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
"""
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
SMOKE_DEFAULTS = dict(preset="tiny", device="cpu", concurrency=4, duration_s=2.0, wrk_threads=1, processes=1,
                      cpu_threads=1)


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


def ours(args, url: str) -> dict:
    from mmscale.bench.load import LoadConfig, bench_load

    cfg = LoadConfig(url=url, concurrencies=[args.concurrency], window_s=args.duration_s, max_windows=1,
                     stable_windows=1, processes=args.processes, payloads=1, captions_per_request=args.captions,
                     warmup_s=0.5)
    (row,) = bench_load(cfg, server="batched", progress=False).rows
    return asdict(row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--captions", type=int, default=1)
    parser.add_argument("--processes", type=int, default=4, help="our load-generator processes")
    parser.add_argument("--wrk-threads", type=int, default=4)
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--cpu-smoke", action="store_true")
    parser.add_argument("--out", default="runs/load_crosscheck")
    if "--cpu-smoke" in (argv if argv is not None else sys.argv[1:]):
        parser.set_defaults(**SMOKE_DEFAULTS)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    from mmscale.bench.load_payload import build_payloads
    from mmscale.bench.load_spawn import SpawnedServer

    payload = build_payloads("match", n=1, captions_per_request=args.captions)[0]
    serve = ["--device", args.device, "--max-batch", "256", "--max-queue", "4096"]
    serve += ["--checkpoint", args.checkpoint] if args.checkpoint else ["--preset", args.preset]
    if args.cpu_threads:
        serve += ["--cpu-threads", str(args.cpu_threads)]
    with SpawnedServer(serve) as server:
        first = ours(args, server.url)
        wrk = run_wrk(server.url, payload.path, payload.body, args.concurrency, args.wrk_threads, args.duration_s)
        second = ours(args, server.url)
    mine = {k: (first[k] + second[k]) / 2 for k in ("throughput_per_s", "p50_ms", "p90_ms", "p99_ms", "mean_ms")}
    result = {
        "concurrency": args.concurrency, "ours": mine, "ours_runs": [first, second],
        "wrk": {k: v for k, v in wrk.items() if k != "raw"}, "wrk_output": wrk["raw"],
        "throughput_ratio": mine["throughput_per_s"] / wrk["throughput_per_s"],
        "p50_ratio": mine["p50_ms"] / wrk["p50_ms"], "p99_ratio": mine["p99_ms"] / wrk["p99_ms"],
        "mean_ratio": mine["mean_ms"] / wrk["mean_ms"],
    }
    result["within_10pct"] = all(abs(result[k] - 1) <= 0.10 for k in ("throughput_ratio", "p50_ratio", "mean_ratio"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "load_crosscheck.json", result, indent=1)
    print(f"{'':<10} {'req/s':>9} {'mean ms':>9} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9}")
    for name, row in (("ours", mine), ("wrk", wrk)):
        print(f"{name:<10} {row['throughput_per_s']:>9.1f} {row['mean_ms']:>9.2f} {row['p50_ms']:>9.2f} "
              f"{row['p90_ms']:>9.2f} {row['p99_ms']:>9.2f}")
    print(f"ours / wrk: throughput {result['throughput_ratio']:.3f}, mean {result['mean_ratio']:.3f}, "
          f"p50 {result['p50_ratio']:.3f}, p99 {result['p99_ratio']:.3f} "
          f"({'within' if result['within_10pct'] else 'NOT within'} 10% on throughput, mean and p50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
