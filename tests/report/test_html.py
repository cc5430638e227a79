"""The HTML report: self-contained, verdicts first, every section says something, plots load."""

from __future__ import annotations

import base64
import re

import pytest

from mmscale.report import plots
from mmscale.report.html import render_report, write_report


def test_chart_spec_renders_to_a_png():
    png = plots.render_png({"id": "c", "title": "t", "x_label": "x", "y_label": "y", "log_x": True,
                            "series": [{"label": "a", "x": [1, 2, 4], "y": [1, None, 3]},
                                       {"label": "b", "x": ["p", "q"], "y": [1, 2], "style": "bar"}]})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_report_is_self_contained_with_verdicts_first(helpers):
    doc = helpers.sample_results()
    html = render_report(doc)
    assert not re.search(r"(src|href)=['\"](https?:|//|/)", html), "external resource referenced"
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) == 2
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    summary = html.index("id='summary'")
    assert summary < html.index("id='section-batchsweep'")
    summary_html = html[summary:html.index("</section>", summary)]
    # failures and unavailable sections are in the summary, the failure first
    assert summary_html.index("FAIL") < summary_html.index("PASS")
    assert "not yet available" in summary_html and "RuntimeError: boom" in summary_html


def test_a_chart_that_cannot_be_drawn_does_not_take_the_report_down(helpers):
    doc = helpers.sample_results()
    doc["sections"]["batchsweep"]["charts"][0]["series"][0]["x"] = [{"k": 1}, None, 3]  # not drawable
    html = render_report(doc)
    assert "could not be drawn" in html and "id='section-load'" in html



def test_report_opens_in_headless_chromium(tmp_path, helpers):
    if not helpers.chromium_binary():
        pytest.skip("Debian chromium is not installed")
    path = write_report(helpers.sample_results(), tmp_path)
    seen = helpers.check_in_chromium(path)
    assert len(seen["images"]) == 2
    assert all(img["complete"] and img["width"] > 0 for img in seen["images"])
    by_id = {s["id"]: s for s in seen["sections"]}
    assert {"summary", "section-batchsweep", "section-load", "section-datascale", "environment"} <= set(by_id)
    assert all(s["chars"] > 0 for s in seen["sections"]), seen["sections"]


def test_a_dict_cell_reads_as_key_value_pairs_not_json():
    from mmscale.report.html import fmt

    assert fmt({"choice": "cpu", "step_ms": {"cpu": 304.4458, "gpu": None}, "ok": True}) == \
        "choice: cpu; step_ms: {cpu: 304, gpu: –}; ok: yes"
    assert fmt([1.5, 2]) == "[1.5,2]" and fmt(None) == "–"
