"""The monitor's rate benchmark measures both samplers and judges each against the targets."""

import pytest

from mmscale.bench.monitor_rate import TARGET_RATE_FRAC, bench_monitor_rate


def test_the_rate_benchmark_measures_both_samplers():
    rows = bench_monitor_rate(interval_s=0.05, busy_s=0.3)  # the verdicts are for a quiet machine
    assert [r["sampler"] for r in rows] == ["process", "thread"]
    assert all(r["n_samples"] >= 2 and r["target_hz"] == pytest.approx(20.0) for r in rows)
    assert all(r["rate_ok"] == (r["achieved_hz"] is not None and r["achieved_hz"] >= TARGET_RATE_FRAC * 20.0)
               for r in rows)
