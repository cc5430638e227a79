"""The hardware monitor's sampling rate and cost while the process it watches holds the GIL
(``mmscale.bench.monitor_rate``): >= 90% of the asked rate (here 10 Hz) and a sampler duty under 20%,
on a quiet machine. Exits 1 when the process sampler misses either.

    PYTHONPATH=src python3 benchmarks/monitor_rate.py --out runs/monitor_rate
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmscale.environment import fingerprint
from mmscale.bench.monitor_rate import bench_monitor_rate
from mmscale.strict_json import write_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--busy-s", type=float, default=5.0, help="how long this process holds the GIL")
    parser.add_argument("--out", default="runs/monitor_rate")
    args = parser.parse_args(argv)
    rows = bench_monitor_rate(args.interval_s, args.busy_s)
    for r in rows:
        print(f"{r['sampler']:8s} {r['achieved_hz']:6.2f} of {r['target_hz']:.0f} Hz "
              f"({'ok' if r['rate_ok'] else 'below target'}), duty {r['sampler_duty_pct']:.1f}% "
              f"({'ok' if r['duty_ok'] else 'over target'})")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "monitor_rate.json", {"rows": rows, "environment": fingerprint()}, indent=1)
    return 0 if rows[0]["rate_ok"] and rows[0]["duty_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
