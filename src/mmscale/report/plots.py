"""Chart specs (plain data in results.json) to PNG images embedded as base64.

A chart is data, not code: section runners describe series, fit lines and marker lines
(the OOM batch, the memory capacity); this module only draws them. That keeps
``mmscale report RUN_DIR`` able to redraw every figure from results.json alone, and lets the
report stay one self-contained HTML file with no external image.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from mmscale.report.units import si  # noqa: E402

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


def _draw_series(ax, series: dict, color: str, bar_offset: float, bar_width: float) -> None:
    style = series.get("style", "line+points")
    xs, ys = series["x"], series["y"]
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if not pairs:
        return
    x, y = zip(*pairs)
    label = series["label"]
    if style == "bar":
        positions = [i + bar_offset for i in range(len(x))]
        ax.bar(positions, y, width=bar_width, label=label, color=color)
        ax.set_xticks(range(len(x)), [str(v) for v in x], rotation=20, ha="right")
    elif style == "points":
        ax.plot(x, y, "o", label=label, color=color)
    elif style == "dashed":
        ax.plot(x, y, "--", label=label, color=color, linewidth=1.2)
    elif style == "line":
        ax.plot(x, y, "-", label=label, color=color, linewidth=1.2)
    else:
        ax.plot(x, y, "-o", label=label, color=color, markersize=4)


def render_png(chart: dict, width_in: float = 7.0, height_in: float = 3.6, dpi: int = 96) -> bytes:
    """Draw one chart spec; returns PNG bytes."""
    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=dpi)
    try:
        bars = [s for s in chart["series"] if s.get("style") == "bar"]
        bar_width = 0.8 / max(len(bars), 1)
        bar_index = 0
        for i, series in enumerate(chart["series"]):
            offset = 0.0
            if series.get("style") == "bar":
                offset = (bar_index - (len(bars) - 1) / 2) * bar_width
                bar_index += 1
            _draw_series(ax, series, PALETTE[i % len(PALETTE)], offset, bar_width)
        for line in chart.get("vlines", []):
            ax.axvline(line["value"], color="#444", linestyle=":", linewidth=1.2)
            ax.annotate(line["label"], (line["value"], 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=8, color="#444")
        for line in chart.get("hlines", []):
            ax.axhline(line["value"], color="#a00", linestyle=":", linewidth=1.2)
            ax.annotate(line["label"], (0.01, line["value"]), xycoords=("axes fraction", "data"),
                        va="bottom", fontsize=8, color="#a00")
        if chart.get("log_x"):
            ax.set_xscale("log", base=2)
        if chart.get("log_y"):
            ax.set_yscale("log")
        ax.set_title(chart["title"], fontsize=11)
        ax.set_xlabel(chart["x_label"])
        ax.set_ylabel(chart["y_label"])
        ax.grid(True, alpha=0.3)
        format_axes(ax, chart)
        ys = [y for s in chart["series"] for y in s["y"] if y is not None]
        if ys and min(ys) >= 0 and not chart.get("log_y"):
            ax.set_ylim(bottom=0)  # from zero: a flat line reads flat, not as noise blown up to fill the axis
        if len(chart["series"]) > 1:  # one series: the title and the y label already name it
            # right of the axes, never over the data or the axis labels
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def tick_text(value: float, unit: str) -> str:
    """A tick label: 1.5k for rates and counts, 50% for percentages, plain digits otherwise."""
    if unit in ("%", "% of one core"):
        return f"{value:g}%"
    return si(value) if abs(value) >= 1000 else f"{value:g}"


def format_axes(ax, chart: dict) -> None:
    """Ticks in the axis unit; whole numbers on an axis of counts (ranks, batch sizes)."""
    y_unit = chart.get("y_unit", "")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v, y_unit)))
    xs = [x for s in chart["series"] if s.get("style") != "bar" for x in s["x"]]
    if xs and all(isinstance(x, int) for x in xs) and not chart.get("log_x"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if chart.get("log_x") and xs and all(isinstance(x, (int, float)) for x in xs):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))
    if not any(s.get("style") == "bar" for s in chart["series"]) and not chart.get("log_x"):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v, chart.get("x_unit", ""))))


def distinct_x(chart: dict) -> int:
    return len({repr(x) for s in chart["series"] if s.get("style") != "dashed" for x in s["x"]})


def as_rows(chart: dict) -> list[dict]:
    """A chart with too few points for a line as table rows: one row per x, one column per series."""
    xs = list(dict.fromkeys(x for s in chart["series"] for x in s["x"]))
    unit = chart.get("y_unit") or ""
    rows = []
    for x in xs:
        row = {chart["x_label"] or "x": x}
        for s in chart["series"]:
            row[s["label"] + (f" ({unit})" if unit and unit not in s["label"] else "")] = next(
                (y for sx, y in zip(s["x"], s["y"]) if sx == x), None)
        rows.append(row)
    return rows


def render_data_uri(chart: dict) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``: the report needs no other file."""
    return "data:image/png;base64," + base64.b64encode(render_png(chart)).decode("ascii")
