"""The answer block at the top of report.html: the CLI's answer lines, each with its evidence beneath."""

from __future__ import annotations

import html

from mmscale.report.answer_text import bottleneck_text, change_text, prediction_text, throughput_text
from mmscale.report.bounds import Bounds, check
from mmscale.report.tables import flag_html


def _note(label: str, text: str | None) -> str:
    return f"<br><span class='fit'>{label}: {html.escape(text)}</span>" if text else ""


def _item(kind: str, text: str, notes: str = "", reason: str | None = None, item_id: str = "") -> str:
    body = flag_html(text, reason) if reason else html.escape(text)
    return f"<li data-answer='{kind}' data-id='{html.escape(item_id)}'>{body}{notes}</li>"


def answer_block(a: dict, flags: list[dict], bounds: Bounds | None = None) -> str:
    thr, b = a["throughput"], a["bottleneck"]
    items = [
        _item("throughput", throughput_text(thr), "",
              check("samples_per_s", thr.get("value"), bounds, scope="answer") if bounds else None),
        _item("bottleneck", bottleneck_text(b), _note("measured by", "pipeline stage breakdown, mean per step")
              if b.get("stage") else ""),
    ]
    for p in a["predictions"]:
        notes = (_note("fit", p.get("fit")) + _note("confirm with" if p.get("value") is not None else "would need",
                                                    p.get("confirm")))
        items.append(_item("prediction", prediction_text(p), notes, item_id=p.get("id") or ""))
    changes = "".join(_item("change", change_text(c), f" <span class='fit'>({html.escape(c['measured_by'])})</span>")
                      for c in a["changes"])
    changes_html = (f"<h3>Changes that would help, by the gain measured in this run</h3><ol>{changes}</ol>" if changes
                    else "<p>No change measured in this run gains enough to list.</p>")
    flagged = ""
    if flags:
        listed = "; ".join(f"{f['section']} · {f['where']} · {f['quantity']}: {f['reason']}" for f in flags[:8])
        flagged = (f"<div class='v fail' data-answer='flags'><b>{len(flags)} figure(s) outside physical bounds</b>, "
                   f"flagged where they appear: {html.escape(listed)}{' …' if len(flags) > 8 else ''}</div>")
    return (f"<section id='answer'><h2>Answer</h2><ul>{''.join(items)}</ul>{changes_html}{flagged}"
            "<p class='sub'>Everything below is the evidence, section by section.</p></section>")
