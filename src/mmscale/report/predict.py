"""Predictions with intervals: pure functions over measured numbers, each unit-tested.

Three predictions the answer block states, each from a fit the run measured:
- a line's value (or the x where it reaches a level) with its 95% prediction interval, from ordinary
  least squares (``line_with_interval``, ``predict``, ``solve_for_x``): training time at 1M samples,
  the batch at which memory reaches the device's capacity;
- scaling efficiency at N ranks from the communication measured at a smaller world
  (``efficiency_at``): the step keeps its non-communication time, and the exposed communication
  grows with the ring collectives' bus bytes per rank, 2(n-1)/n.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

# two-sided 97.5% quantiles of Student's t by degrees of freedom (1..30); above 30 the normal's 1.96
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(dof: int) -> float:
    """Student's t quantile for a two-sided 95% interval with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"a t interval needs at least one degree of freedom, got {dof}")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


@dataclass(frozen=True)
class Line:
    """``y = slope * x + intercept`` by least squares, with what its prediction interval needs."""

    slope: float
    intercept: float
    r2: float
    n_points: int
    residual_sd: float | None  # None with two points: the line passes through both, no spread left
    mean_x: float
    sxx: float

    def as_dict(self) -> dict:
        return asdict(self)


def line_with_interval(xs: Sequence[float], ys: Sequence[float]) -> Line:
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError("a line needs as many y as x values and two distinct x values")
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sxx
    intercept = mean_y - slope * mean_x
    ss_res = sum((y - slope * x - intercept) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    residual_sd = math.sqrt(ss_res / (n - 2)) if n > 2 else None
    return Line(slope, intercept, r2, n, residual_sd, mean_x, sxx)


@dataclass(frozen=True)
class Estimate:
    """A predicted value with its 95% interval (``low``/``high`` None when the fit cannot give one)."""

    value: float
    low: float | None
    high: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _half_width(line: Line, x: float) -> float | None:
    """Half-width of the 95% prediction interval of one new measurement at ``x``."""
    if line.residual_sd is None:
        return None
    se = line.residual_sd * math.sqrt(1 + 1 / line.n_points + (x - line.mean_x) ** 2 / line.sxx)
    return t975(line.n_points - 2) * se


def predict(line: Line, x: float) -> Estimate:
    value = line.slope * x + line.intercept
    half = _half_width(line, x)
    return Estimate(value, None if half is None else value - half, None if half is None else value + half)


def solve_for_x(line: Line, y: float) -> Estimate | None:
    """The ``x`` where the line reaches ``y``, with the interval of the inverse prediction (the x
    range over which the band of ``predict`` contains ``y``); None when the line does not rise."""
    if line.slope <= 0:
        return None
    value = (y - line.intercept) / line.slope
    half = _half_width(line, value)
    if half is None:
        return Estimate(value, None, None)
    return Estimate(value, value - half / line.slope, value + half / line.slope)


def ratio_interval(numerator: float, estimate: Estimate) -> Estimate:
    """``numerator / estimate`` (a throughput from a predicted time): the interval's ends swap; a
    lower end at or below zero leaves the upper end open (None)."""
    value = numerator / estimate.value if estimate.value > 0 else math.inf
    if estimate.low is None or estimate.high is None:
        return Estimate(value, None, None)
    high = numerator / estimate.low if estimate.low > 0 else None
    low = numerator / estimate.high if estimate.high > 0 else None
    return Estimate(value, low, high)


def ring_factor(world: int) -> float:
    """Bus bytes per rank of a ring all-reduce (or all-gather + reduce-scatter) relative to the
    payload: 2(n-1)/n; 0 on one rank, 1 on two, 1.75 on eight."""
    if world < 1:
        raise ValueError(f"world must be >= 1, got {world}")
    return 2 * (world - 1) / world


def efficiency_at(one_rank_ms: float, compute_ms: float, comm_ms: float, measured_world: int,
                  target_world: int) -> float:
    """Weak-scaling efficiency at ``target_world`` ranks: one rank's step over the predicted step.

    ``compute_ms`` is the multi-rank step without gradient sync (measured), ``comm_ms`` the exposed
    communication at ``measured_world`` (step minus that); communication grows by the ring factor.
    """
    if one_rank_ms <= 0 or compute_ms <= 0 or measured_world < 2:
        raise ValueError("needs positive step times and a measured world of 2 or more ranks")
    comm = max(comm_ms, 0.0) * ring_factor(target_world) / ring_factor(measured_world)
    return one_rank_ms / (compute_ms + comm)
