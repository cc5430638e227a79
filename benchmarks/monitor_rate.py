"""The hardware monitor's sampling rate and cost while the process it watches holds the GIL.

Why: the monitor samples from its own process so that a training loop's Python thread cannot
starve it; its target is >= 90% of the asked rate (5 Hz at the default 0.2 s here asked at 10 Hz)
and a sampler duty (wall time per sample over the interval) under 20%. Both depend on the CPU the
machine gives, so they are measured here, on a quiet machine, not asserted in unit tests.

    PYTHONPATH=src python3 benchmarks/monitor_rate.py --out runs/monitor_rate
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

TARGET_RATE_FRAC = 0.9
TARGET_DUTY_PCT = 20.0


def hold_the_gil(seconds: float) -> None:
    """Pure-Python busy work in this thread, as a training loop launching kernels does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(200))


def measure(interval_s: float, busy_s: float, process: bool) -> dict:
    from mmscale.monitor import HardwareMonitor

    with HardwareMonitor(interval_s=interval_s, process=process) as mon:  # NVML tried, used if present
        hold_the_gil(busy_s)
    s = mon.summary()
    return {"sampler": "process" if process else "thread", "interval_s": interval_s, "busy_s": busy_s,
            "n_samples": s["n_samples"], "achieved_hz": s["achieved_hz"], "target_hz": s["target_hz"],
            "sampler_duty_pct": s["sampler_duty_pct"],
            "rate_ok": s["achieved_hz"] is not None and s["achieved_hz"] >= TARGET_RATE_FRAC * s["target_hz"],
            "duty_ok": s["sampler_duty_pct"] is not None and s["sampler_duty_pct"] < TARGET_DUTY_PCT}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--busy-s", type=float, default=5.0, help="how long this process holds the GIL")
    parser.add_argument("--out", default="runs/monitor_rate")
    args = parser.parse_args(argv)
    from mmscale.bench.environment import fingerprint
    from mmscale.strict_json import write_json

    rows = [measure(args.interval_s, args.busy_s, process) for process in (True, False)]
    for r in rows:
        print(f"{r['sampler']:8s} {r['achieved_hz']:6.2f} of {r['target_hz']:.0f} Hz "
              f"({'ok' if r['rate_ok'] else 'below target'}), duty {r['sampler_duty_pct']:.1f}% "
              f"({'ok' if r['duty_ok'] else 'over target'})")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "monitor_rate.json", {"rows": rows, "environment": fingerprint()}, indent=1)
    return 0 if rows[0]["rate_ok"] and rows[0]["duty_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
