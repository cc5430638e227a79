"""Energy figures as pure functions over monitor rows (joules, joules per sample).

NVML's total-energy counter (Volta and newer) is exact and preferred; where it is missing the
energy is integrated from power samples with the trapezoid rule, which at 5 Hz is within a few
percent for a training step that lasts far longer than one sample interval.
"""

from __future__ import annotations


def integrate_power_j(t_s: list[float], power_w: list[float | None]) -> float | None:
    """Trapezoid integral of power over time; None when fewer than two valid samples."""
    points = [(t, p) for t, p in zip(t_s, power_w) if p is not None]
    if len(points) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(points, points[1:]))


def gpu_energy_j(rows: list[dict], gpu: int) -> tuple[float | None, str]:
    """Energy one GPU used over the rows, and where the figure came from."""
    key = f"gpu{gpu}_energy_j"
    counter = [r[key] for r in rows if r.get(key) is not None]
    if len(counter) >= 2:
        return counter[-1] - counter[0], "nvml_energy_counter"
    power = [r.get(f"gpu{gpu}_power_w") for r in rows]
    return integrate_power_j([r["t_s"] for r in rows], power), "power_integral"


def _interpolate(points: list[tuple[float, float]], t: float) -> float:
    """Linear interpolation in sorted (t, value) points; ``t`` must lie within them."""
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def gpu_energy_in_span_j(rows: list[dict], gpu: int, start_s: float, end_s: float) -> tuple[float | None, str]:
    """Energy one GPU used between two timeline times (``t_s``), and where the figure came from.

    The energy counter is interpolated at both ends when samples bracket the span (a load level's
    window rarely starts on a sample); otherwise the mean of the power samples inside the span
    times its length; None when neither is available.
    """
    key = f"gpu{gpu}_energy_j"
    points = sorted((r["t_s"], r[key]) for r in rows if r.get(key) is not None)
    if len(points) >= 2 and points[0][0] <= start_s and points[-1][0] >= end_s:
        return _interpolate(points, end_s) - _interpolate(points, start_s), "nvml_energy_counter"
    power = [r[f"gpu{gpu}_power_w"] for r in rows
             if start_s <= r["t_s"] <= end_s and r.get(f"gpu{gpu}_power_w") is not None]
    if power:
        return sum(power) / len(power) * (end_s - start_s), "power_mean"
    return None, "no GPU samples in the span"


def joules_per_item(energy_j: float | None, n_items: int) -> float | None:
    """Joules per training sample or served request; None when either is unknown or zero."""
    if energy_j is None or n_items <= 0:
        return None
    return energy_j / n_items
