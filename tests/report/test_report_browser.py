"""Done-when for the report: opened in headless Chromium, the answer comes first, every impossible
figure is flagged wherever it shows, and every chart has one unit per axis."""

from __future__ import annotations

import re

import pytest

from mmscale.report.bounds import find_flags
from mmscale.report.html import write_report
from mmscale.report.results import validation_errors
from mmscale.report.units import format_cell


def unit_problems(chart: dict) -> list[str]:
    """What breaks 'one unit per axis' in a chart spec (empty when it holds)."""
    problems = []
    if "x_unit" not in chart or "y_unit" not in chart:
        return [f"{chart['id']}: no x_unit/y_unit"]
    for axis in ("x", "y"):
        unit, label = chart[f"{axis}_unit"], chart[f"{axis}_label"]
        if unit and not label.endswith(f"({unit})"):
            problems.append(f"{chart['id']}: {axis} label {label!r} does not state its unit {unit!r}")
        if re.search(r"\s/\s|x100", label):
            problems.append(f"{chart['id']}: {axis} label {label!r} mixes units")
    problems += [f"{chart['id']}: series {s['label']!r} in {s.get('unit')!r}, axis in {chart['y_unit']!r}"
                 for s in chart["series"] if s.get("unit") != chart["y_unit"]]
    return problems


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("report_helpers", Path(__file__).with_name("report_helpers.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    if not helpers.chromium_binary():
        pytest.skip("Debian chromium is not installed")
    doc = helpers.full_results()
    path = write_report(doc, tmp_path_factory.mktemp("report"))
    return doc, path, helpers.check_in_chromium(path)


def test_the_answer_block_comes_first_and_answers_each_question(seen):
    doc, _, page = seen
    assert page["order"][0] == "answer"
    kinds = [a["kind"] for a in page["answer"]]
    assert kinds[:2] == ["throughput", "bottleneck"] and "change" in kinds and "flags" in kinds
    texts = {a["id"] or a["kind"]: a["text"] for a in page["answer"]}
    assert "samples/s" in texts["throughput"] and "device-hours per 1M samples" in texts["throughput"]
    assert "input-bound" in texts["bottleneck"] and "backward" in texts["bottleneck"]
    for key in ("batchsweep.bf16.max_batch", "datascale.samples_per_s@1000000", "datascale.samples_per_s@10000000",
                "scaling.ddp.weak.efficiency@x8"):
        assert "95%" in texts[key] and "fit:" in texts[key] and "confirm with:" in texts[key], texts[key]


def test_no_flagged_figure_is_shown_unflagged(seen):
    doc, _, page = seen
    flags = find_flags(doc)
    assert flags, "the constructed run plants an impossible CPU figure"
    for flag in flags:
        text = format_cell(flag["quantity"], flag["value"])
        showing = [c for c in page["cells"] if text in c["text"]]
        assert showing, f"{text} is not in the page"
        assert all(c["flagged"] for c in showing), f"{text} shown without its flag: {showing}"


def test_each_chart_has_one_unit_per_axis_and_two_points_become_a_table(seen):
    doc, _, page = seen
    assert validation_errors(doc) == []
    charts = [c for s in doc["sections"].values() for c in s["charts"]]
    assert {c["id"] for c in charts} >= {"monitor-cpu", "monitor-memory", "monitor-gpu", "datascale-time",
                                         "scaling-efficiency"}
    assert [p for c in charts for p in unit_problems(c)] == []
    cpu = next(c for c in charts if c["id"] == "monitor-cpu")
    assert [v["label"] for v in cpu["vlines"]] == ["pipeline", "scaling"]  # section marks on the timeline
    assert "chart-scaling-efficiency" not in page["figures"]  # ranks 1 and 2 only: a table instead
    assert all(img["complete"] and img["width"] > 0 for img in page["images"])


def test_the_trace_and_csv_files_are_written_beside_the_report(seen):
    _, path, _ = seen
    import json

    trace = json.loads((path.parent / "pipeline.trace.json").read_text())
    stages = [e["name"] for e in trace["traceEvents"] if e["ph"] == "X" and e["pid"] == 2]
    assert stages == ["data_wait", "image_fwd", "backward"]
    csvs = sorted(p.name for p in (path.parent / "csv").iterdir())
    assert "batchsweep-measurements.csv" in csvs and "monitor-field-statistics-over-the-whole-run.csv" in csvs
    assert "pipeline.trace.json" in path.read_text()
