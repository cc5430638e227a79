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


def joules_per_item(energy_j: float | None, n_items: int) -> float | None:
    """Joules per training sample or served request; None when either is unknown or zero."""
    if energy_j is None or n_items <= 0:
        return None
    return energy_j / n_items
