"""Tables of result rows as HTML and CSV: every number with its unit, every impossible one flagged.

A cell whose figure breaks a physical bound (``bounds.check``) is drawn inside ``<span class='flag'>``
with the reason beside it; long text (an error message) folds into ``<details>`` so one row stays one
line tall; each table carries a CSV of its raw rows (full precision), embedded as a data URI so the
report stays one file, and written beside it by ``write_report``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
from pathlib import Path

from mmscale.report.bounds import STAT_COLUMNS, Bounds, check
from mmscale.report.units import format_cell
from mmscale.strict_json import dumps

MAX_TABLE_ROWS = 60
CSV_DIR = "csv"
FOLD_CHARS = 80


def fmt(value, nested: bool = False) -> str:
    """Plain text of a value: numbers to 4 significant digits without e-notation, a dict to
    ``key: value`` pairs (a nested one in braces), lists to compact JSON, None to an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else (format_cell("", value) or str(value))
    if isinstance(value, dict):
        text = ("; " if not nested else ", ").join(f"{k}: {fmt(v, nested=True)}" for k, v in value.items())
        return "{" + text + "}" if nested else text
    if isinstance(value, list):
        return dumps(value, separators=(",", ":"))
    return str(value)


def flag_html(text: str, reason: str) -> str:
    """A figure outside its physical bounds: marked, with the reason in words beside it."""
    return (f"<span class='flag' data-flag='{html.escape(reason)}' title='{html.escape(reason)}'>⚠ "
            f"{html.escape(text)} <small>(out of bounds: {html.escape(reason)})</small></span>")


def cell_html(column: str, value, row: dict, bounds: Bounds | None, where: str = "") -> str:
    """One cell's inner HTML: formatted with its column's unit, flagged when out of bounds."""
    quantity = row["field"] if column in STAT_COLUMNS and isinstance(row.get("field"), str) else column
    text = format_cell(quantity, value) if not isinstance(value, (dict, list)) else None
    text = text if text is not None else fmt(value)
    reason = check(quantity, value, bounds, row, where) if bounds is not None else None
    if reason:
        return flag_html(text, reason)
    if len(text) > FOLD_CHARS:
        return (f"<details><summary>{html.escape(text[:FOLD_CHARS - 20])}…</summary>"
                f"<div class='long'>{html.escape(text)}</div></details>")
    return html.escape(text)


def csv_text(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return out.getvalue()


def _csv_value(value):
    """A CSV field: nested values as JSON; NaN and infinities empty, as results.json stores them (null)."""
    if isinstance(value, (dict, list)):
        return dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


def slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")[:80]


def csv_link(rows: list[dict], name: str) -> str:
    data = base64.b64encode(csv_text(rows).encode("utf-8")).decode("ascii")
    return (f"<a class='csv' download='{html.escape(name)}.csv' "
            f"href='data:text/csv;charset=utf-8;base64,{data}'>CSV</a>")


def table(rows: list[dict], title: str | None = None, bounds: Bounds | None = None,
          csv_name: str | None = None, where: str = "") -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    shown = rows[:MAX_TABLE_ROWS]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell_html(c, r.get(c), r, bounds, where)}</td>" for c in columns) + "</tr>"
                   for r in shown)
    more = (f"<p class='reason'>{len(rows) - len(shown)} more rows in the CSV and results.json</p>"
            if len(rows) > len(shown) else "")
    link = csv_link(rows, csv_name or slug(title or "table")) if csv_name or title else ""
    caption = f"<h4>{html.escape(title)} {link}</h4>" if title else link
    return f"{caption}<div class='scroll'><table><tr>{head}</tr>{body}</table></div>{more}"


def key_values(data: dict, bounds: Bounds | None = None, where: str = "") -> str:
    if not data:
        return ""
    body = "".join(f"<tr><td class='k'>{html.escape(str(k))}</td><td>{cell_html(str(k), v, data, bounds, where)}</td></tr>"
                   for k, v in data.items())
    return f"<table class='kv'>{body}</table>"


def section_tables(doc: dict) -> list[tuple[str, list[dict]]]:
    """(file stem, rows) of every table the report shows: each section's tables and measurements."""
    out = []
    for name, section in (doc.get("sections") or {}).items():
        out += [(slug(name, t["title"]), t["rows"]) for t in section.get("tables") or [] if t["rows"]]
        if section.get("rows"):
            out.append((slug(name, "measurements"), section["rows"]))
    return out


def write_csvs(doc: dict, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, rows in section_tables(doc):
        path = folder / f"{stem}.csv"
        path.write_text(csv_text(rows), encoding="utf-8")
        paths.append(path)
    return paths
