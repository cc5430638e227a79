"""The hardware monitor's sampling rate and cost while the process it watches holds the GIL.

Why: the monitor samples from its own process so that a training loop's Python thread cannot
starve it; its target is >= 90% of the asked rate and a sampler duty (wall time per sample over
the interval) under 20%. Both depend on the CPU the machine gives, so they are measured here, on a
quiet machine, not asserted in unit tests.
"""

from __future__ import annotations

import time

from mmscale.monitor import HardwareMonitor

TARGET_RATE_FRAC = 0.9
TARGET_DUTY_PCT = 20.0


def hold_the_gil(seconds: float) -> None:
    """Pure-Python busy work in this thread, as a training loop launching kernels does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(200))


def measure(interval_s: float, busy_s: float, process: bool) -> dict:
    """One sampler (its own process, or a thread of this one) asked for a sample every ``interval_s``
    while this thread holds the GIL for ``busy_s``: its rate and duty against the targets."""
    with HardwareMonitor(interval_s=interval_s, process=process) as mon:  # NVML tried, used if present
        hold_the_gil(busy_s)
    s = mon.summary()
    return {"sampler": "process" if process else "thread", "interval_s": interval_s, "busy_s": busy_s,
            "n_samples": s["n_samples"], "achieved_hz": s["achieved_hz"], "target_hz": s["target_hz"],
            "sampler_duty_pct": s["sampler_duty_pct"],
            "rate_ok": s["achieved_hz"] is not None and s["achieved_hz"] >= TARGET_RATE_FRAC * s["target_hz"],
            "duty_ok": s["sampler_duty_pct"] is not None and s["sampler_duty_pct"] < TARGET_DUTY_PCT}


def bench_monitor_rate(interval_s: float, busy_s: float) -> list[dict]:
    """The process sampler (the product's) and the thread sampler (the contrast), in turn."""
    return [measure(interval_s, busy_s, process) for process in (True, False)]
