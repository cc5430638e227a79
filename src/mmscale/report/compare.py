"""Compare two runs: which headline figures moved beyond their measured noise.

Each metric in results.json carries its repeats (per-step or per-epoch values, repeated
runs). A change counts as a regression only when it is larger than the spread of both
runs' repeats (``stats.compare_samples``); a difference inside that spread is reported as
"within noise", never as a regression. Differences in the environment (device, torch, git
revision) are listed first because they explain most surprising changes.
"""

from __future__ import annotations

import html
from pathlib import Path

from mmscale import stats
from mmscale.report.answer import answer
from mmscale.report.html import STYLE, fmt, table
from mmscale.report.units import format_quantity, format_range

ENV_KEYS = ("platform", "cpu_model", "cpu_count_usable", "host_memory_gib")


def environment_differences(env_a: dict, env_b: dict) -> list[dict]:
    diffs = []
    for key in ENV_KEYS:
        if env_a.get(key) != env_b.get(key):
            diffs.append({"field": key, "a": env_a.get(key), "b": env_b.get(key)})
    gpus = [[g.get("name") for g in e.get("gpus", [])] for e in (env_a, env_b)]
    if gpus[0] != gpus[1]:
        diffs.append({"field": "gpus", "a": gpus[0], "b": gpus[1]})
    for key in ("version", "cuda"):
        a, b = env_a.get("torch", {}).get(key), env_b.get("torch", {}).get(key)
        if a != b:
            diffs.append({"field": f"torch.{key}", "a": a, "b": b})
    commit = [(e.get("git") or {}).get("commit") for e in (env_a, env_b)]
    if commit[0] != commit[1]:
        diffs.append({"field": "git.commit", "a": commit[0], "b": commit[1]})
    return diffs


def predictions_vs_measured(doc_a: dict, doc_b: dict) -> list[dict]:
    """Each prediction of run A that run B measured: the predicted value and interval against B's median.

    A's answer names each prediction by the metric id that a run measuring it writes (for example
    ``datascale.samples_per_s@1000000``), so the match is by name; A's answer is recomputed when its
    results.json predates the ``answer`` field.
    """
    predicted = (doc_a.get("answer") or answer(doc_a))["predictions"]  # what A said at the time
    metrics_b = doc_b.get("metrics", {})
    rows = []
    for p in predicted:
        measured = metrics_b.get(p.get("id") or "")
        if p.get("value") is None or p.get("basis") != "predicted" or not measured or not measured["values"]:
            continue
        value = stats.median(measured["values"])
        inside = None if p.get("low") is None or p.get("high") is None else p["low"] <= value <= p["high"]
        rows.append({"prediction": p["what"], "metric": p["id"], "predicted": p["value"],
                     "interval": format_range(p["low"], p["high"], p["unit"]) if inside is not None else "none",
                     "measured": value, "error_rel": p["value"] / value - 1 if value else None,
                     "verdict": {True: "confirmed (inside the interval)", False: "missed (outside the interval)",
                                 None: "no interval to test"}[inside], "fit": p.get("fit")})
    return rows


def compare_runs(doc_a: dict, doc_b: dict, min_rel: float = 0.03) -> dict:
    """Run A is the baseline, run B the candidate. Returns rows and counts, no printing."""
    rows = []
    metrics_a, metrics_b = doc_a.get("metrics", {}), doc_b.get("metrics", {})
    for name in sorted(set(metrics_a) | set(metrics_b)):
        a, b = metrics_a.get(name), metrics_b.get(name)
        if not a or not b or not a["values"] or not b["values"]:
            rows.append({"metric": name, "unit": (a or b)["unit"], "verdict": "only in one run",
                         "a": stats.median(a["values"]) if a and a["values"] else None,
                         "b": stats.median(b["values"]) if b and b["values"] else None})
            continue
        change = stats.compare_samples(a["values"], b["values"], a["higher_is_better"], min_rel=min_rel)
        rows.append({
            "metric": name, "unit": a["unit"], "a": change.baseline, "b": change.candidate,
            "change_pct": 100 * change.change_rel, "noise_pct": 100 * change.noise_rel,
            "threshold_pct": 100 * change.threshold_rel, "verdict": change.verdict,
            "repeats_a": len(a["values"]), "repeats_b": len(b["values"]),
            "noise_measured": change.noise_measured,
        })
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return {
        "environment_differences": environment_differences(doc_a["environment"], doc_b["environment"]),
        "rows": rows,
        "counts": counts,
        "regressions": [r["metric"] for r in rows if r["verdict"] == "regression"],
        "predictions": predictions_vs_measured(doc_a, doc_b),
    }


def format_text(result: dict, label_a: str, label_b: str) -> str:
    lines = [f"baseline A: {label_a}", f"candidate B: {label_b}"]
    for diff in result["environment_differences"]:
        lines.append(f"environment differs: {diff['field']}: {diff['a']} -> {diff['b']}")
    width = max([len(r["metric"]) for r in result["rows"]] + [6])
    lines.append(f"{'metric':<{width}}  {'A':>11}  {'B':>11}  {'change':>8}  {'noise':>7}  verdict")
    for r in result["rows"]:
        change = f"{r['change_pct']:+.1f}%" if r.get("change_pct") is not None else "–"
        noise = f"{r['noise_pct']:.1f}%" if r.get("noise_pct") is not None else "–"
        flag = "  <-- REGRESSION" if r["verdict"] == "regression" else ""
        lines.append(f"{r['metric']:<{width}}  {fmt(r['a']):>11}  {fmt(r['b']):>11}  {change:>8}  "
                     f"{noise:>7}  {r['verdict']}{' (noise not measured)' if r.get('noise_measured') is False else ''}{flag}")
    for p in result.get("predictions", []):
        lines.append(f"A predicted {p['prediction']}: {format_quantity(p['predicted'])} ({p['interval']}); "
                     f"B measured {format_quantity(p['measured'])}: {p['verdict']}")
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result["counts"].items()))
    lines.append(f"summary: {counts or 'no metrics'}")
    return "\n".join(lines)


def render_compare_html(result: dict, label_a: str, label_b: str) -> str:
    verdict_rows = "".join(
        f"<div class='v {'fail' if r['verdict'] == 'regression' else 'pass' if r['verdict'] == 'improvement' else 'info'}'>"
        f"<b>{html.escape(r['verdict'].upper())}</b> {html.escape(r['metric'])}: {fmt(r.get('a'))} → "
        f"{fmt(r.get('b'))} {html.escape(r['unit'])}"
        + (f" ({r['change_pct']:+.1f}%, noise {r['noise_pct']:.1f}%)" if r.get("change_pct") is not None else "")
        + "</div>"
        for r in result["rows"] if r["verdict"] != "within noise"
    ) or "<div class='v pass'>No metric moved beyond its measured noise.</div>"
    env = table(result["environment_differences"]) or "<p>Same device and software.</p>"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>mmscale compare</title>"
        f"<style>{STYLE}</style></head><body><h1>mmscale compare</h1>"
        f"<p class='sub'>A (baseline): {html.escape(label_a)}<br>B (candidate): {html.escape(label_b)}</p>"
        f"<section id='summary'><h2>Changes beyond noise</h2>{verdict_rows}</section>"
        f"<section id='predictions'><h2>A's predictions that B measured</h2>"
        f"{table(result.get('predictions', [])) or '<p>B measured none of what A predicted.</p>'}</section>"
        f"<section id='environment'><h2>Environment differences</h2>{env}</section>"
        f"<section id='metrics'><h2>All metrics</h2>{table(result['rows'])}</section></body></html>"
    )


def write_compare_html(result: dict, label_a: str, label_b: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_compare_html(result, label_a, label_b), encoding="utf-8")
    return path
