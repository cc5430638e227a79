"""Statistics behind every verdict: fits, percentiles, scaling efficiency, knee, noise.

Pure functions over plain numbers so that each one is unit-tested on constructed inputs; the
benchmarks only measure, and the report only presents what these functions conclude.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), interpolating linearly between ranks (numpy's ``linear``
    method, named so that the definition the reports use stays explicit)."""
    if not len(values):
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return float(np.percentile(values, q, method="linear"))


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 90, 95, 99)) -> dict[str, float]:
    """``{"p50": ..., "p90": ...}`` for a latency or step-time sample."""
    return {f"p{q:g}": percentile(values, q) for q in qs}


def median(values: Sequence[float]) -> float:
    if not len(values):
        raise ValueError("median of an empty sequence")
    return float(np.median(values))


@dataclass(frozen=True)
class LinearFit:
    """``y = slope * x + intercept`` by least squares, with the coefficient of determination."""

    slope: float
    intercept: float
    r2: float
    n_points: int

    def predict(self, x: float) -> float:
        return self.slope * x + self.intercept

    def solve_for_x(self, y: float) -> float:
        """The ``x`` at which the fitted line reaches ``y`` (inf when the line is flat)."""
        if self.slope <= 0:
            return math.inf
        return (y - self.intercept) / self.slope

    def as_dict(self) -> dict:
        return asdict(self)


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    """Ordinary least squares of ``ys`` on ``xs``; needs two distinct ``x`` values.

    R^2 is 1 for a perfect line; for a constant ``y`` (no variance to explain) it is reported as
    1.0 when the fit is exact, which is what "memory does not grow with N" looks like.
    """
    if len(xs) != len(ys):
        raise ValueError(f"linear_fit: {len(xs)} x values but {len(ys)} y values")
    if len(xs) < 2 or len(set(xs)) < 2:
        raise ValueError("linear_fit needs at least two distinct x values")
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    # np.cov rather than np.polyfit: for a constant y its covariance is exactly 0, so the flat
    # line comes out exact (polyfit's least-squares solver leaves a slope of about 1e-16)
    (var_x, cov_xy), _ = np.cov(x, y, bias=True)
    slope = float(cov_xy / var_x)
    intercept = float(y.mean() - slope * x.mean())
    residuals = y - (slope * x + intercept)
    ss_res, ss_tot = float(residuals @ residuals), float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0:
        r2 = 1.0 if ss_res == 0 else 0.0
    else:
        r2 = 1.0 - ss_res / ss_tot
    n = len(xs)
    return LinearFit(slope=slope, intercept=intercept, r2=r2, n_points=n)


def growth_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Slope of log(y) against log(x): 1 for linear growth, 2 for quadratic, 0 for flat.

    Used to call time growth super-linear: a straight-line fit can still have a high R^2 on a
    gently quadratic curve over a 10x range, the exponent cannot hide it.
    """
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({p[0] for p in pairs}) < 2:
        raise ValueError("growth_exponent needs two distinct positive x values with positive y")
    return linear_fit([p[0] for p in pairs], [p[1] for p in pairs]).slope


def is_superlinear(xs: Sequence[float], ys: Sequence[float], tolerance: float = 0.15) -> bool:
    """True when ``y`` grows faster than ``x^(1 + tolerance)``.

    The tolerance absorbs the fixed per-run cost (start-up, warm-up), which makes small runs
    look relatively slow and so pushes the exponent below 1, never above.
    """
    return growth_exponent(xs, ys) > 1.0 + tolerance


def relative_growth(xs: Sequence[float], ys: Sequence[float]) -> float:
    """(y at the largest x) / (y at the smallest x) - 1: how much a quantity grew over the range."""
    pairs = sorted(zip(xs, ys))
    first, last = pairs[0][1], pairs[-1][1]
    if first <= 0:
        return math.inf if last > 0 else 0.0
    return last / first - 1.0


def scaling_efficiency(throughput_1: float, throughput_n: float, n_workers: int) -> float:
    """Throughput on ``n`` workers over ``n`` times the single-worker throughput (1.0 = perfect).

    Both strong scaling (fixed global batch: the same work split over ``n``) and weak scaling
    (fixed per-worker batch: ``n`` times the work) reduce to this ratio when throughput is in
    samples per second; the caller says which one the runs were.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if throughput_1 <= 0:
        raise ValueError("single-worker throughput must be positive")
    return throughput_n / (n_workers * throughput_1)


def knee(xs: Sequence[float], ys: Sequence[float], min_gain: float = 0.10) -> float:
    """The smallest ``x`` past which the next step up in ``x`` gains less than ``min_gain``.

    For a batch sweep in doublings this is "the batch beyond which doubling buys less than 10%
    more samples/s": where to stop paying memory for throughput. Returns the last ``x`` when
    every step still gains.
    """
    pairs = sorted(zip(xs, ys))
    if not pairs:
        raise ValueError("knee of an empty sequence")
    for (x0, y0), (_, y1) in zip(pairs, pairs[1:]):
        if y0 > 0 and y1 / y0 - 1.0 < min_gain:
            return x0
    return pairs[-1][0]


def relative_spread(values: Sequence[float]) -> float:
    """(max - min) / median of repeated measurements: the run's own noise, 0 for one value."""
    if not values:
        raise ValueError("relative_spread of an empty sequence")
    mid = median(values)
    if mid == 0:
        return 0.0 if max(values) == min(values) else math.inf
    return (max(values) - min(values)) / abs(mid)


@dataclass(frozen=True)
class Change:
    """One metric compared between a baseline and a candidate run."""

    baseline: float  # median of the baseline repeats
    candidate: float  # median of the candidate repeats
    change_rel: float  # candidate / baseline - 1
    noise_rel: float  # the larger relative spread of the two runs' repeats
    threshold_rel: float  # how far a change must go to count: max(noise, floor)
    verdict: str  # "regression", "improvement" or "within noise"
    noise_measured: bool  # False when a run had a single value and the floor alone applied

    def as_dict(self) -> dict:
        return asdict(self)


def compare_samples(
    baseline: Sequence[float],
    candidate: Sequence[float],
    higher_is_better: bool,
    min_rel: float = 0.03,
    unmeasured_noise_rel: float = 0.10,
) -> Change:
    """Call a change a regression only when it is larger than both runs' measured noise.

    The threshold is the wider of the two runs' relative spreads (max - min over median), never
    below ``min_rel``. A run with a single value has no measured spread; then the conservative
    ``unmeasured_noise_rel`` applies and ``noise_measured`` is False so the report can say so.
    """
    if not baseline or not candidate:
        raise ValueError("compare_samples needs at least one value on each side")
    base, cand = median(baseline), median(candidate)
    measured = len(baseline) > 1 and len(candidate) > 1
    noise = max(relative_spread(baseline), relative_spread(candidate))
    threshold = max(min_rel, noise if measured else max(noise, unmeasured_noise_rel))
    if base == 0:
        change = 0.0 if cand == 0 else math.copysign(math.inf, cand)
    else:
        change = cand / base - 1.0
    better = change > 0 if higher_is_better else change < 0
    if abs(change) <= threshold:
        verdict = "within noise"
    else:
        verdict = "improvement" if better else "regression"
    return Change(base, cand, change, noise, threshold, verdict, measured)
