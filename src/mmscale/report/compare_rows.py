"""Compare two or more run folders by their result rows (``rows.jsonl``, see ``mmscale.result_rows``).

Every (benchmark, variant, metric) that any run measured becomes one line: its value in each run (the
median when a run repeated it) and each run's ratio to the first, the baseline. Rows carry no noise
estimate, so nothing here is called a regression; ``compare_runs`` does that for validate runs.
Fields of the environment fingerprint that differ from the baseline's are listed first.
"""

from __future__ import annotations

import html
from pathlib import Path

from mmscale import stats
from mmscale.report.html import STYLE, fmt, table


def _median_values(rows: list[dict]) -> dict[tuple, tuple[float | None, str]]:
    """``(benchmark, variant, metric) -> (median value, unit)`` over one run's rows."""
    values: dict[tuple, list] = {}
    units: dict[tuple, str] = {}
    for r in rows:
        for name, m in r["metrics"].items():
            key = (r["benchmark"], r["variant"], name)
            units[key] = m["unit"]
            values.setdefault(key, [])
            if m["value"] is not None:
                values[key].append(m["value"])
    return {k: (stats.median(v) if v else None, units[k]) for k, v in values.items()}


def environment_differences(runs: list[list[dict]]) -> list[dict]:
    """Each fingerprint field where a run's first row differs from the baseline's first row."""
    envs = [r[0]["environment"] if r else {} for r in runs]
    keys = list(dict.fromkeys(k for env in envs for k in env))
    return [{"field": k, "values": [env.get(k) for env in envs]}
            for k in keys if any(env.get(k) != envs[0].get(k) for env in envs[1:])]


def compare_row_runs(runs: list[list[dict]]) -> dict:
    """``runs``: each run's rows, the baseline first. Returns the lines and the environment differences."""
    medians = [_median_values(rows) for rows in runs]
    keys = list(dict.fromkeys(k for m in medians for k in m))
    lines = []
    for key in keys:
        values = [m.get(key, (None, ""))[0] for m in medians]
        unit = next(m[key][1] for m in medians if key in m)
        base = values[0]
        lines.append({"benchmark": key[0], "variant": key[1], "metric": key[2], "unit": unit, "values": values,
                      "ratios": [v / base if base and v is not None else None for v in values[1:]]})
    return {"environment_differences": environment_differences(runs), "rows": lines}


def format_rows_text(result: dict, labels: list[str]) -> str:
    """A plain table: benchmark, variant, metric, unit, each run's value, each later run over the first."""
    lines = [f"run {i}: {label}" + (" (baseline)" if i == 0 else "") for i, label in enumerate(labels)]
    for diff in result["environment_differences"]:
        lines.append(f"environment differs: {diff['field']}: " + " | ".join(fmt(v) for v in diff["values"]))
    head = ["benchmark", "variant", "metric", "unit"] + [f"run {i}" for i in range(len(labels))] + [
        f"{i}/0" for i in range(1, len(labels))]
    cells = [[r["benchmark"], r["variant"], r["metric"], r["unit"]] + [fmt(v) for v in r["values"]]
             + [f"{x:.3f}x" if x is not None else "–" for x in r["ratios"]] for r in result["rows"]]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
    text_cols = 4  # left-aligned names, then right-aligned numbers
    for row in [head] + cells:
        lines.append("  ".join(c.ljust(w) if i < text_cols else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if not result["rows"]:
        lines.append("no metrics in these runs' rows")
    return "\n".join(lines)


def write_rows_html(result: dict, labels: list[str], path: str | Path, environment: dict | None = None) -> Path:
    """The lines as one HTML page: a comparison of several runs, or (one run, with its ``environment``)
    the page ``mmscale report`` writes for a benchmark's run folder."""
    flat = [{"benchmark": r["benchmark"], "variant": r["variant"], "metric": r["metric"], "unit": r["unit"],
             **{f"run {i}": v for i, v in enumerate(r["values"])},
             **{f"run {i} / run 0": x for i, x in enumerate(r["ratios"], 1)}} for r in result["rows"]]
    if len(labels) == 1:
        title, heading = "mmscale report", "Environment"
        env = table([{"field": k, "value": v} for k, v in (environment or {}).items()])
    else:
        title, heading = "mmscale compare", "Environment differences"
        env = table([{"field": d["field"], **{f"run {i}": v for i, v in enumerate(d["values"])}}
                     for d in result["environment_differences"]]) or "<p>Same device and software.</p>"
    runs = "<br>".join(f"run {i}: {html.escape(label)}" for i, label in enumerate(labels))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body><h1>{title}</h1><p class='sub'>{runs}</p>"
            f"<section id='environment'><h2>{heading}</h2>{env}</section>"
            f"<section id='metrics'><h2>Metrics by variant</h2>{table(flat)}</section></body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
