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
        if len(chart["series"]) > 1 or chart["series"][0].get("label"):
            ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def render_data_uri(chart: dict) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``: the report needs no other file."""
    return "data:image/png;base64," + base64.b64encode(render_png(chart)).decode("ascii")
