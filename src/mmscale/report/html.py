"""results.json to one self-contained ``report.html``: verdicts first, then plots and tables.

Self-contained means no script, stylesheet, font or image from anywhere else: plots are
base64 PNGs, the style is inline, so the file can be attached to a design review as is.
Every section shows either its figures or why it has none (failed, skipped, not available).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from mmscale.bench.environment import describe_device
from mmscale.extras import install_hint, missing_modules
from mmscale.strict_json import dumps

REPORT_NAME = "report.html"
MAX_TABLE_ROWS = 60
LEVEL_ORDER = {"fail": 0, "warn": 1, "pass": 2, "info": 3}
STATUS_TEXT = {"ok": "measured", "failed": "failed", "skipped": "not run", "unavailable": "not available"}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
 color:#222;line-height:1.4;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right;vertical-align:top}
th{background:#f4f4f4} td.k,th.k{text-align:left}
.v{padding:.35rem .6rem;margin:.25rem 0;border-left:5px solid;border-radius:3px}
.v.pass{border-color:#2a2;background:#f0fff0} .v.warn{border-color:#e90;background:#fff8e8}
.v.fail{border-color:#c22;background:#fff0f0} .v.info{border-color:#58a;background:#f2f6fb}
.badge{font-size:.75rem;padding:.1rem .45rem;border-radius:3px;margin-left:.5rem;vertical-align:middle;
 background:#eee;color:#333} .badge.ok{background:#dfd} .badge.failed{background:#fdd}
.scroll{overflow-x:auto;max-width:100%} .reason{color:#555;font-style:italic} figure{margin:1rem 0} figcaption{font-size:.8rem;color:#555}
img{max-width:100%;height:auto} pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.75rem}
"""


def fmt(value, nested: bool = False) -> str:
    """Numbers to 4 significant digits, a dict to ``key: value`` pairs (a nested one in braces),
    lists to compact JSON, None to an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, dict):
        text = ("; " if not nested else ", ").join(f"{k}: {fmt(v, nested=True)}" for k, v in value.items())
        return "{" + text + "}" if nested else (text if len(text) <= 400 else text[:397] + "...")
    if isinstance(value, list):
        text = dumps(value, separators=(",", ":"))
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def table(rows: list[dict], title: str | None = None) -> str:
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    shown = rows[:MAX_TABLE_ROWS]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in shown
    )
    more = (f"<p class='reason'>{len(rows) - len(shown)} more rows in results.json</p>"
            if len(rows) > len(shown) else "")
    caption = f"<h4>{html.escape(title)}</h4>" if title else ""
    return f"{caption}<div class='scroll'><table><tr>{head}</tr>{body}</table></div>{more}"


def key_values(data: dict) -> str:
    if not data:
        return ""
    body = "".join(
        f"<tr><td class='k'>{html.escape(str(k))}</td><td>{html.escape(fmt(v))}</td></tr>"
        for k, v in data.items()
    )
    return f"<table>{body}</table>"


def verdict_block(verdicts: list[dict], prefix: str = "") -> str:
    ordered = sorted(verdicts, key=lambda v: LEVEL_ORDER.get(v["level"], 9))
    return "".join(
        f"<div class='v {v['level']}'><b>{v['level'].upper()}</b> {html.escape(prefix)}"
        f"{html.escape(v['text'])}</div>"
        for v in ordered
    )


def chart_block(chart: dict) -> str:
    if missing_modules("report"):  # tables and verdicts still render; only the plots need matplotlib
        return (f"<p class='reason'>chart '{html.escape(chart.get('title', '?'))}' not drawn: matplotlib is "
                f"not installed ({html.escape(install_hint('report'))})</p>")
    from mmscale.report.plots import render_data_uri  # imports matplotlib, the optional `report` extra

    try:
        uri = render_data_uri(chart)
    except Exception as exc:  # one bad chart must not take the whole report down
        return f"<p class='reason'>chart '{html.escape(chart.get('title', '?'))}' could not be drawn: {html.escape(str(exc))}</p>"
    caption = f"<figcaption>{html.escape(chart['caption'])}</figcaption>" if chart.get("caption") else ""
    return (f"<figure id='chart-{html.escape(chart['id'])}'><img alt='{html.escape(chart['title'])}' "
            f"src='{uri}'>{caption}</figure>")


def section_block(name: str, section: dict) -> str:
    status = section["status"]
    parts = [f"<section id='section-{html.escape(name)}' data-status='{status}'>",
             f"<h2>{html.escape(section['title'])}<span class='badge {status}'>"
             f"{STATUS_TEXT.get(status, status)}</span></h2>"]
    if section.get("reason"):
        parts.append(f"<p class='reason'>{html.escape(section['reason'])}</p>")
    if section.get("wall_s") is not None:
        measured = f" · measured by the invocation of {html.escape(section['invocation'])}" \
            if section.get("invocation") else ""
        parts.append(f"<p class='sub'>took {section['wall_s']:.1f} s{measured}</p>")
    parts.append(verdict_block(section.get("verdicts", [])))
    parts.append(key_values(section.get("summary", {})))
    parts += [chart_block(c) for c in section.get("charts", [])]
    for extra in section.get("tables", []):
        parts.append(table(extra["rows"], extra["title"]))
    if section.get("rows"):
        parts.append(table(section["rows"], "Measurements"))
    if section.get("error"):
        parts.append(f"<details><summary>error detail</summary><pre>{html.escape(section['error'])}</pre></details>")
    if len(parts) == 2:  # nothing but the heading: say so rather than leave it blank
        parts.append("<p class='reason'>This section recorded no figures.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def render_report(doc: dict, title: str = "mmscale validation report") -> str:
    """The whole report as one HTML string."""
    env = doc["environment"]
    all_verdicts = []
    for name, section in doc["sections"].items():
        for v in section.get("verdicts", []):
            all_verdicts.append({**v, "text": f"{section['title']}: {v['text']}"})
        if section["status"] != "ok":
            level = "fail" if section["status"] == "failed" else "info"
            all_verdicts.append({"level": level, "text": f"{section['title']}: "
                                 f"{STATUS_TEXT[section['status']]} ({section.get('reason')})"})
    git = env.get("git") or {}
    header = (
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(describe_device(env))} · "
        f"preset {html.escape(str(doc.get('preset')))} · {html.escape(doc['created_utc'])} · "
        f"mmscale {html.escape(doc['tool']['version'])} · torch {html.escape(str(env['torch'].get('version')))}"
        f" · git {html.escape(str(git.get('commit') or 'unknown')[:10])}"
        f"{' (dirty)' if git.get('dirty') else ''}</p>"
    )
    summary = f"<section id='summary'><h2>Summary</h2>{verdict_block(all_verdicts)}</section>"
    sections = "\n".join(section_block(n, s) for n, s in doc["sections"].items())
    env_rows = {k: v for k, v in env.items() if k not in ("packages",)}
    footer = (
        "<section id='environment'><h2>Environment</h2>" + key_values(env_rows)
        + table([{"package": k, "version": v} for k, v in env.get("packages", {}).items()])
        + "</section><section id='config'><h2>Resolved config</h2><pre>"
        + html.escape(dumps(doc["config"], indent=1)) + "</pre></section>"
    )
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{header}{summary}{sections}{footer}</body></html>")


def write_report(doc: dict, run_dir: str | Path, name: str = REPORT_NAME) -> Path:
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(doc), encoding="utf-8")
    return path
