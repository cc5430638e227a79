"""Numbers as a reader reads them: with their unit, three significant digits, no raw exponents.

``format_quantity(value, unit)`` formats a figure whose unit is known; ``unit_of(column)`` infers
the unit from a result column's name (the house names carry units: ``step_ms``, ``peak_gpu_gib``,
``samples_per_s``, ``data_wait_pct``), so every table cell goes through ``format_cell``.
"""

from __future__ import annotations

import math
import re

_SI = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
_BINARY = ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, never in e-notation: 7.224e-06 reads 7.22×10⁻⁶."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else "–"
    exponent = math.floor(math.log10(abs(value)))
    if exponent < -3:
        mantissa = value / 10**exponent
        return f"{mantissa:.{digits - 1}f}×10{str(exponent).translate(_SUPERSCRIPT)}"
    decimals = max(digits - 1 - exponent, 0)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def si(value: float) -> str:
    """1550 -> '1.55k', 6900470784 -> '6.9G'; below 1000 three significant digits."""
    for scale, suffix in _SI:
        if abs(value) >= scale:
            return significant(value / scale) + suffix
    return significant(value)


def format_quantity(value, unit: str = "") -> str:
    """One figure with its unit; None and non-finite values read as an en dash."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–" if value is None or isinstance(value, float) else str(value)
    if unit == "bytes":
        scale, name = next(((s, n) for s, n in _BINARY if abs(value) >= s), (1, "B"))
        return f"{significant(value / scale)} {name}"
    if unit == "GiB":
        return f"{significant(value * 1024)} MiB" if 0 < abs(value) < 0.1 else f"{significant(value)} GiB"
    if unit == "ms":
        return f"{significant(value / 1e3)} s" if abs(value) >= 1e4 else f"{significant(value)} ms"
    if unit == "s":
        return f"{significant(value / 60)} min" if abs(value) >= 600 else f"{significant(value)} s"
    if unit == "%":
        return f"{significant(value)}%"
    if unit == "fraction":
        return format_quantity(100 * value, "%")
    if unit == "relative":
        return ("+" if value > 0 else "") + format_quantity(100 * value, "%")
    if unit == "x":
        return f"{significant(value)}x"
    if unit.endswith("/s"):
        return f"{si(value)}{' ' if unit != '/s' else ''}{unit}"
    if unit == "samples" or isinstance(value, int):
        text = si(value) if abs(value) >= 1e6 and value % 10**5 == 0 else f"{value:,.0f}" if abs(value) >= 1 else significant(value)
        return f"{text} {unit}".strip()
    return f"{si(value)} {unit}".strip()


def format_range(low: float, high: float, unit: str = "") -> str:
    """'600 – 700 samples': both ends formatted alike, the unit said once."""
    a, b = format_quantity(low, unit), format_quantity(high, unit)
    suffix = " " + b.rsplit(" ", 1)[1] if " " in b else ""
    if suffix and a.endswith(suffix):
        a = a[: -len(suffix)]
    return f"{a} – {b}"


def unit_of(column: str) -> str | None:
    """The unit a column's name states; None when the name says none."""
    name = re.sub(r"_(median|mean|min|max|p\d+)$", "", column.lower())  # data_wait_pct_median is in %
    rules = ((("_ms", "ms"), "ms"), (("_gib",), "GiB"), (("_mib",), "MiB"),
             (("_pct", "pct"), "%"), (("_frac", "share"), "fraction"), (("_rel",), "relative"),
             (("speedup", "vs_reference_dataloader", "ours_vs_"), "x"), (("_s", "seconds"), "s"),
             (("spread",), "fraction"), (("_w",), "W"), (("_j",), "J"), (("_mhz",), "MHz"), (("_hz",), "Hz"),
             (("_c",), "°C"))
    if name.endswith("_per_s") or name == "per_s":
        return "/s"
    if "bytes" in name:
        return "bytes"
    for suffixes, unit in rules:
        if any(name.endswith(s) or name == s.strip("_") for s in suffixes):
            return unit
    return None


def format_cell(column: str, value) -> str | None:
    """A table cell's number with the unit its column names; None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    unit = unit_of(column)
    if unit == "MiB":
        return format_quantity(value / 1024, "GiB")
    if unit is None:
        return format_quantity(value, "")
    return format_quantity(value, unit)
