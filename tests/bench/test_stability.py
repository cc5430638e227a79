"""The repeat-until-stable rule on constructed steady and noisy series."""

import math

import pytest

from mmscale.bench.stability import check_stability, relative_deviation, repeat_until_stable


def test_steady_series_is_stable_after_three_windows():
    verdict = check_stability([100.0, 103.0, 98.0])
    assert verdict.stable and verdict.windows == 3
    assert verdict.spread == pytest.approx((103 - 301 / 3) / (301 / 3), rel=1e-9)


def test_noisy_series_is_not_stable_and_reports_spread():
    verdict = check_stability([100.0, 140.0, 80.0, 120.0])
    assert not verdict.stable
    assert verdict.spread == pytest.approx((340 / 3 - 80) / (340 / 3))  # last three: worst |80 - mean| / mean


def test_fewer_windows_than_required_are_never_stable():
    assert not check_stability([100.0, 100.0]).stable
    assert math.isinf(check_stability([100.0]).spread)


def test_every_metric_must_agree():
    steady_throughput_noisy_p99 = [(1000.0, 10.0), (1010.0, 30.0), (995.0, 11.0)]
    assert not check_stability(steady_throughput_noisy_p99).stable
    assert check_stability([(1000.0, 10.0), (1010.0, 10.5), (995.0, 10.2)]).stable


def test_nan_is_never_stable():
    assert relative_deviation([1.0, float("nan")]) == math.inf
    assert not check_stability([1.0, 1.0, float("nan")]).stable


def test_repeat_stops_as_soon_as_the_last_three_agree():
    series = iter([50.0, 200.0, 100.0, 101.0, 99.0, 500.0])
    results, verdict = repeat_until_stable(lambda i: next(series), lambda v: [v], max_windows=10)
    assert results == [50.0, 200.0, 100.0, 101.0, 99.0] and verdict.stable


def test_repeat_gives_up_at_the_budget_and_marks_unstable():
    values = [100.0, 150.0] * 10
    results, verdict = repeat_until_stable(lambda i: values[i], lambda v: [v], max_windows=6)
    assert len(results) == 6 and not verdict.stable and verdict.windows == 6


def test_tolerance_is_configurable():
    series = [100.0, 115.0, 100.0]
    assert not check_stability(series, tolerance=0.05).stable
    assert check_stability(series, tolerance=0.10).stable
