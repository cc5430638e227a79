"""The repeat-until-stable rule, usable by every benchmark.

A measurement window is repeated until the last ``last`` windows agree: every one of them within
``tolerance`` (default 10%, perf_analyzer's default) of their mean, for every metric tracked
(e.g. throughput and p99). If the window budget runs out first, the figure is marked unstable and
reported with its spread, never silently averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

DEFAULT_TOLERANCE = 0.10
DEFAULT_LAST = 3


@dataclass
class Stability:
    stable: bool
    windows: int
    """Windows measured."""
    spread: float
    """Largest relative deviation from the mean over the last windows, over all metrics."""
    tolerance: float
    values: list[list[float]] = field(default_factory=list)
    """Each window's metrics, in order."""

    def as_dict(self) -> dict:
        return {"stable": self.stable, "windows": self.windows, "spread": self.spread,
                "tolerance": self.tolerance}


def relative_deviation(values: Sequence[float]) -> float:
    """max |v - mean| / |mean|; 0 for identical values, inf for a zero mean with spread or NaNs."""
    if any(math.isnan(v) for v in values):
        return math.inf
    mean = sum(values) / len(values)
    worst = max(abs(v - mean) for v in values)
    if mean == 0:
        return 0.0 if worst == 0 else math.inf
    return worst / abs(mean)


def check_stability(windows: Sequence[Sequence[float] | float], tolerance: float = DEFAULT_TOLERANCE,
                    last: int = DEFAULT_LAST) -> Stability:
    """Is the series stable? ``windows`` holds one metric value (or a tuple of metrics) per window."""
    if tolerance < 0 or last < 1:
        raise ValueError("tolerance must be >= 0 and last >= 1")
    rows = [list(w) if isinstance(w, (list, tuple)) else [float(w)] for w in windows]
    if len(rows) < last:
        spread = max((relative_deviation(col) for col in zip(*rows)), default=math.inf) if len(rows) > 1 else math.inf
        return Stability(False, len(rows), spread, tolerance, rows)
    tail = rows[-last:]
    spread = max(relative_deviation(col) for col in zip(*tail))
    return Stability(spread <= tolerance, len(rows), spread, tolerance, rows)


def repeat_until_stable(measure: Callable[[int], T], metrics: Callable[[T], Sequence[float]],
                        tolerance: float = DEFAULT_TOLERANCE, last: int = DEFAULT_LAST,
                        max_windows: int = 10) -> tuple[list[T], Stability]:
    """Call ``measure(window_index)`` until ``metrics`` of the last ``last`` results agree or
    ``max_windows`` ran out. Returns every result and the verdict."""
    if max_windows < 1:
        raise ValueError("max_windows must be >= 1")
    results: list[T] = []
    verdict = check_stability([], tolerance, last)
    for index in range(max_windows):
        results.append(measure(index))
        verdict = check_stability([list(metrics(r)) for r in results], tolerance, last)
        if verdict.stable:
            break
    return results, verdict
