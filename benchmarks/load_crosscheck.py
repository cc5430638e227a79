"""Cross-check our load generator against ``wrk`` on the same endpoint, payload and concurrency,
closed loop (``mmscale.bench.serving.crosscheck``): throughput and latency should agree within 10%.

    PYTHONPATH=src python3 benchmarks/load_crosscheck.py --preset base --concurrency 64 --out runs/crosscheck
    PYTHONPATH=src python3 benchmarks/load_crosscheck.py --cpu-smoke --out runs/crosscheck
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mmscale.bench.serving.crosscheck import crosscheck, format_crosscheck
from mmscale.strict_json import write_json

SMOKE_DEFAULTS = dict(preset="tiny", device="cpu", concurrency=4, duration_s=2.0, wrk_threads=1, processes=1,
                      cpu_threads=1)


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
    serve = ["--device", args.device, "--max-batch", "256", "--max-queue", "4096"]
    serve += ["--checkpoint", args.checkpoint] if args.checkpoint else ["--preset", args.preset]
    serve += ["--cpu-threads", str(args.cpu_threads)] if args.cpu_threads else []
    result = crosscheck(serve, args.concurrency, args.duration_s, args.captions, args.processes, args.wrk_threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "load_crosscheck.json", result, indent=1)
    print(format_crosscheck(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
