"""Statistics on constructed inputs whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmscale import stats


def test_percentile_matches_numpy_linear_interpolation():
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 10, 50, 90, 95, 99, 100):
        assert stats.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert stats.percentiles(values) .keys() == {"p50", "p90", "p95", "p99"}


def test_percentile_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_median_averages_the_middle_pair():
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5 == stats.percentile([4.0, 1.0, 3.0, 2.0], 50)
    assert stats.median([7]) == 7.0 and isinstance(stats.median([7]), float)
    with pytest.raises(ValueError):
        stats.median([])


def test_linear_fit_recovers_slope_intercept_and_r2():
    xs = [10_000, 50_000, 100_000]
    ys = [0.002 * x + 30 for x in xs]
    fit = stats.linear_fit(xs, ys)
    assert fit.slope == pytest.approx(0.002)
    assert fit.intercept == pytest.approx(30)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.predict(200_000) == pytest.approx(430)
    assert fit.solve_for_x(430) == pytest.approx(200_000)


def test_linear_fit_r2_drops_with_noise_and_matches_numpy():
    rng = np.random.default_rng(0)
    xs = np.arange(1, 21, dtype=float)
    ys = 3 * xs + 2 + rng.normal(0, 5, xs.size)
    fit = stats.linear_fit(list(xs), list(ys))
    slope, intercept = np.polyfit(xs, ys, 1)
    assert fit.slope == pytest.approx(slope)
    assert fit.intercept == pytest.approx(intercept)
    r2 = np.corrcoef(xs, ys)[0, 1] ** 2
    assert fit.r2 == pytest.approx(r2)
    assert 0.5 < fit.r2 < 0.999


def test_linear_fit_needs_two_distinct_x():
    with pytest.raises(ValueError):
        stats.linear_fit([1, 1], [2, 3])
    with pytest.raises(ValueError):
        stats.linear_fit([1, 2], [2])


def test_flat_line_fits_exactly_and_never_reaches_a_level():
    fit = stats.linear_fit([1, 2, 3], [5, 5, 5])
    assert fit.r2 == 1.0 and fit.slope == 0
    assert fit.solve_for_x(10) == math.inf


def test_growth_exponent_and_superlinear_flag():
    xs = [1000, 5000, 10000]
    assert stats.growth_exponent(xs, [2 * x for x in xs]) == pytest.approx(1.0)
    assert stats.growth_exponent(xs, [x**2 for x in xs]) == pytest.approx(2.0)
    assert not stats.is_superlinear(xs, [2 * x + 50 for x in xs])  # fixed cost pulls below 1
    assert stats.is_superlinear(xs, [x**1.5 for x in xs])
    assert not stats.is_superlinear(xs, [x**1.1 for x in xs])  # inside the tolerance


def test_relative_growth():
    assert stats.relative_growth([3, 1, 2], [1.3, 1.0, 1.1]) == pytest.approx(0.3)


def test_scaling_efficiency():
    assert stats.scaling_efficiency(100, 400, 4) == pytest.approx(1.0)
    assert stats.scaling_efficiency(100, 300, 4) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        stats.scaling_efficiency(0, 1, 2)
    with pytest.raises(ValueError):
        stats.scaling_efficiency(1, 1, 0)


def test_knee_is_where_doubling_stops_paying():
    batches = [32, 64, 128, 256, 512]
    throughput = [770, 1100, 1400, 1500, 1553]  # +43%, +27%, +7%, +3.5%
    assert stats.knee(batches, throughput) == 128
    assert stats.knee(batches, [1, 2, 4, 8, 16]) == 512  # always gaining: last point
    assert stats.knee([8, 16], [10, 10.5]) == 8


def test_relative_spread():
    assert stats.relative_spread([100]) == 0
    assert stats.relative_spread([95, 100, 105]) == pytest.approx(0.10)


def test_compare_flags_a_planted_regression_but_not_noise():
    base = [100, 103, 98, 101, 99]  # about 5% spread
    noisy = [99, 104, 97, 102, 100]
    slower = [80, 82, 79, 81, 83]  # 20% fewer samples/s
    assert stats.compare_samples(base, noisy, higher_is_better=True).verdict == "within noise"
    change = stats.compare_samples(base, slower, higher_is_better=True)
    assert change.verdict == "regression" and change.change_rel == pytest.approx(-0.19, abs=0.01)
    assert stats.compare_samples(base, slower, higher_is_better=False).verdict == "improvement"


def test_compare_threshold_follows_measured_noise():
    # a 10% drop is noise for a run whose repeats spread 30%, and a regression for a tight one
    wide = [85, 100, 115]
    tight = [99.5, 100, 100.5]
    assert stats.compare_samples(wide, [90, 90, 90], True).verdict == "within noise"
    assert stats.compare_samples(tight, [90, 90.2, 89.8], True).verdict == "regression"


def test_compare_with_single_values_uses_the_floor_and_says_so():
    change = stats.compare_samples([100], [95], True)
    assert not change.noise_measured and change.verdict == "within noise"
    assert stats.compare_samples([100], [70], True).verdict == "regression"
