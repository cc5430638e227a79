"""results.json to one self-contained ``report.html``: verdicts first, then plots and tables.

Self-contained means no script, stylesheet, font or image from anywhere else: plots are
base64 PNGs, the style is inline, so the file can be attached to a design review as is.
Every section shows either its figures or why it has none (failed, skipped, not available).
"""

from __future__ import annotations

import html
from pathlib import Path

from mmscale.environment import describe_device
from mmscale.extras import install_hint, missing_modules
from mmscale.report.answer import answer as compute_answer
from mmscale.report.answer_html import answer_block
from mmscale.report.bounds import Bounds, bounds_of, find_flags, scope_of
from mmscale.report.tables import CSV_DIR, fmt, key_values, slug, table, write_csvs
from mmscale.report.trace import TRACE_NAME, run_trace
from mmscale.strict_json import dumps, write_json

__all__ = ["fmt", "table", "render_report", "write_report", "STYLE"]
REPORT_NAME = "report.html"
LEVEL_ORDER = {"fail": 0, "warn": 1, "pass": 2, "info": 3}
STATUS_TEXT = {"ok": "measured", "failed": "failed", "skipped": "not run", "unavailable": "not available"}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
 color:#222;line-height:1.4;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right;vertical-align:top;white-space:nowrap}
th{background:#f4f4f4} td.k,th.k{text-align:left}
.v{padding:.35rem .6rem;margin:.25rem 0;border-left:5px solid;border-radius:3px}
.v.pass{border-color:#2a2;background:#f0fff0} .v.warn{border-color:#e90;background:#fff8e8}
.v.fail{border-color:#c22;background:#fff0f0} .v.info{border-color:#58a;background:#f2f6fb}
.badge{font-size:.75rem;padding:.1rem .45rem;border-radius:3px;margin-left:.5rem;vertical-align:middle;
 background:#eee;color:#333} .badge.ok{background:#dfd} .badge.failed{background:#fdd}
.scroll{overflow-x:auto;max-width:100%} .reason{color:#555;font-style:italic} figure{margin:1rem 0} figcaption{font-size:.8rem;color:#555}
img{max-width:100%;height:auto} pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.75rem}
.flag{background:#fdd;color:#900;font-weight:600;padding:0 .2rem;border-radius:2px} .flag small{font-weight:400}
#answer{border:2px solid #58a;border-radius:6px;padding:.4rem 1rem;background:#f8fbff}
#answer h2{margin-top:.4rem} #answer li{margin:.2rem 0} .fit{color:#555;font-size:.8rem}
a.csv{font-size:.7rem;font-weight:400;margin-left:.4rem} details summary{cursor:pointer}
td details{max-width:28rem;text-align:left} .long{white-space:pre-wrap;text-align:left}
"""


def verdict_block(verdicts: list[dict], prefix: str = "") -> str:
    ordered = sorted(verdicts, key=lambda v: LEVEL_ORDER.get(v["level"], 9))
    return "".join(
        f"<div class='v {v['level']}'><b>{v['level'].upper()}</b> {html.escape(prefix)}"
        f"{html.escape(v['text'])}</div>"
        for v in ordered
    )


def summary_block(verdicts: list[dict]) -> str:
    """Failures and warnings in view; passes and notes folded under a count (the answer above says
    what they add up to)."""
    alarming = [v for v in verdicts if v["level"] in ("fail", "warn")]
    rest = [v for v in verdicts if v["level"] not in ("fail", "warn")]
    counts = ", ".join(f"{sum(v['level'] == level for v in rest)} {level}" for level in ("pass", "info")
                       if any(v["level"] == level for v in rest))
    folded = (f"<details><summary>{len(rest)} more verdicts ({counts})</summary>{verdict_block(rest)}</details>"
              if rest else "")
    return f"<section id='summary'><h2>Verdicts</h2>{verdict_block(alarming)}{folded}</section>"


def chart_block(chart: dict, bounds: Bounds | None = None) -> str:
    if missing_modules("report"):  # tables and verdicts still render; only the plots need matplotlib
        return (f"<p class='reason'>chart '{html.escape(chart.get('title', '?'))}' not drawn: matplotlib is "
                f"not installed ({html.escape(install_hint('report'))})</p>")
    from mmscale.report.plots import as_rows, distinct_x, render_data_uri  # matplotlib: the `report` extra

    if distinct_x(chart) < 3 and not any(s.get("style") == "bar" for s in chart["series"]):
        # two points draw a line that says nothing a table would not say better
        return table(as_rows(chart), chart["title"], bounds, csv_name=f"chart-{chart['id']}") + (
            f"<p class='sub'>{html.escape(chart['caption'])}</p>" if chart.get("caption") else "")
    try:
        uri = render_data_uri(chart)
    except Exception as exc:  # one bad chart must not take the whole report down
        return f"<p class='reason'>chart '{html.escape(chart.get('title', '?'))}' could not be drawn: {html.escape(str(exc))}</p>"
    caption = f"<figcaption>{html.escape(chart['caption'])}</figcaption>" if chart.get("caption") else ""
    return (f"<figure id='chart-{html.escape(chart['id'])}'><img alt='{html.escape(chart['title'])}' "
            f"src='{uri}'>{caption}</figure>")


def section_block(name: str, section: dict, bounds: Bounds | None = None) -> str:
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
    parts.append(key_values(section.get("summary", {}), bounds, scope_of(name, "summary")))
    if name == "pipeline" and status == "ok":
        parts.append(trace_links(section))
    parts += [chart_block(c, bounds) for c in section.get("charts", [])]
    for extra in section.get("tables", []):
        parts.append(table(extra["rows"], extra["title"], bounds, slug(name, extra["title"]), scope_of(name, extra["title"])))
    if section.get("rows"):
        parts.append(table(section["rows"], "Measurements", bounds, slug(name, "measurements"),
                           scope_of(name, "Measurements")))
    if section.get("error"):
        parts.append(f"<details><summary>error detail</summary><pre>{html.escape(section['error'])}</pre></details>")
    if len(parts) == 2:  # nothing but the heading: say so rather than leave it blank
        parts.append("<p class='reason'>This section recorded no figures.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def trace_links(section: dict) -> str:
    """Links to the pipeline's traces (files beside report.html; they open in ui.perfetto.dev)."""
    links = [f"<a href='{TRACE_NAME}'>stage timeline of the mean step</a> (Chrome trace JSON)"]
    torch_trace = (section.get("summary") or {}).get("trace")
    if torch_trace:
        links.append(f"<a href='{html.escape(torch_trace)}'>torch profiler trace</a> of the profiled steps")
    return ("<p class='sub'>Traces: " + " · ".join(links) + "; open them in ui.perfetto.dev or "
            "chrome://tracing.</p>")


def render_report(doc: dict, title: str = "mmscale validation report") -> str:
    """The whole report as one HTML string: the answer, then the summary, then each section's evidence."""
    env = doc["environment"]
    bounds = bounds_of(doc)
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
    top = answer_block(compute_answer(doc), find_flags(doc), bounds)  # this build's rules, as for the charts
    summary = summary_block(all_verdicts)
    sections = "\n".join(section_block(n, s, bounds) for n, s in doc["sections"].items())
    env_rows = {k: v for k, v in env.items() if k not in ("packages",)}
    packages = {k: v or (doc["tool"]["version"] if k == "mmscale" else "not installed")
                for k, v in env.get("packages", {}).items()}
    footer = (
        "<section id='environment'><h2>Environment</h2>" + key_values(env_rows, bounds)
        + table([{"package": k, "version": v} for k, v in packages.items()], "Packages")
        + "</section><section id='config'><h2>Resolved config</h2><pre>"
        + html.escape(dumps(doc["config"], indent=1)) + "</pre></section>"
    )
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{header}{top}{summary}{sections}{footer}</body></html>")


def write_report(doc: dict, run_dir: str | Path, name: str = REPORT_NAME) -> Path:
    """report.html, and beside it the files it links: the run's trace and a CSV of every table."""
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(doc), encoding="utf-8")
    write_json(path.parent / TRACE_NAME, run_trace(doc))
    write_csvs(doc, path.parent / CSV_DIR)
    return path
