"""Predictions with intervals: values that could be wrong, on constructed inputs."""

from __future__ import annotations

import math

import pytest

from mmscale.report import predict


def test_exact_line_has_zero_width_interval_and_two_points_have_none():
    line = predict.line_with_interval([1, 2, 3, 4], [3, 5, 7, 9])  # y = 2x + 1
    assert (line.slope, line.intercept, line.r2) == pytest.approx((2, 1, 1))
    estimate = predict.predict(line, 10)
    assert (estimate.value, estimate.low, estimate.high) == pytest.approx((21, 21, 21))
    two = predict.line_with_interval([1, 2], [3, 5])
    assert predict.predict(two, 10).low is None


def test_prediction_interval_matches_the_textbook_formula():
    xs, ys = [1, 2, 3, 4, 5], [2.1, 3.9, 6.2, 7.8, 10.1]
    line = predict.line_with_interval(xs, ys)
    estimate = predict.predict(line, 8)
    n, mean_x = 5, 3
    sxx = sum((x - mean_x) ** 2 for x in xs)
    s = math.sqrt(sum((y - line.slope * x - line.intercept) ** 2 for x, y in zip(xs, ys)) / (n - 2))
    half = 3.182 * s * math.sqrt(1 + 1 / n + (8 - mean_x) ** 2 / sxx)  # t(0.975, 3 dof) = 3.182
    assert estimate.high - estimate.value == pytest.approx(half)
    assert estimate.low < estimate.value < estimate.high


def test_solve_for_x_inverts_the_line_and_widens_by_the_slope():
    line = predict.line_with_interval([32, 64, 128, 256], [1.0, 2.05, 3.9, 8.1])
    estimate = predict.solve_for_x(line, 20.0)
    assert line.slope * estimate.value + line.intercept == pytest.approx(20.0)
    assert estimate.low < estimate.value < estimate.high
    assert predict.solve_for_x(predict.line_with_interval([1, 2, 3], [5, 5, 5]), 10) is None


def test_ratio_interval_swaps_ends_and_opens_when_time_can_reach_zero():
    est = predict.ratio_interval(1000, predict.Estimate(10, 8, 12.5))
    assert (est.value, est.low, est.high) == pytest.approx((100, 80, 125))
    open_ended = predict.ratio_interval(1000, predict.Estimate(10, -1, 20))
    assert open_ended.high is None and open_ended.low == pytest.approx(50)


def test_efficiency_at_eight_grows_communication_by_the_ring_factor():
    assert predict.ring_factor(2) == 1 and predict.ring_factor(8) == pytest.approx(1.75)
    # one rank 100 ms; two ranks: 100 ms compute + 10 ms exposed communication -> 100/110 at x2
    assert predict.efficiency_at(100, 100, 10, 2, 2) == pytest.approx(100 / 110)
    assert predict.efficiency_at(100, 100, 10, 2, 8) == pytest.approx(100 / 117.5)
    # measured at 4 ranks (factor 1.5): 8 ranks adds 1.75/1.5 of it
    assert predict.efficiency_at(100, 100, 15, 4, 8) == pytest.approx(100 / 117.5)
    with pytest.raises(ValueError):
        predict.efficiency_at(100, 100, 10, 1, 8)
