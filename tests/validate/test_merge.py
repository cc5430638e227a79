"""``validate --merge``: a suite split over two invocations becomes one run with every section,
each stamped with the invocation that measured it; a merge into a run of another config is refused."""

from __future__ import annotations

import json

import pytest

from mmscale import validate as validate_mod
from mmscale.validate import sections as validate_sections
from mmscale.errors import ConfigError
from mmscale.report.results import new_section, validation_errors

COMMON = ["data.image_size=32", "model.image_size=32", "model.image_depth=1"]


@pytest.fixture
def cheap_sections(monkeypatch):
    """Every section replaced by one that records a figure naming itself: this test is about the
    merge, not the measurements."""
    for name in validate_mod.SECTION_ORDER:
        def runner(ctx, name=name):
            section = new_section(validate_sections.TITLES[name])
            section["summary"] = {"measured_by": name}
            return section
        monkeypatch.setitem(validate_sections.RUNNERS, name, runner)


def run(tmp_path, sections, merge=False, extra=()):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return validate_mod.validate("cpu", data_dir=str(data), out_dir=tmp_path / "run", show_progress=False,
                                 merge=merge, overrides=[f"validate.sections={sections}", *COMMON, *extra])


def test_two_invocations_merge_into_one_run(tmp_path, cheap_sections):
    first = run(tmp_path, "[data,pipeline,datascale]")
    assert first["sections"]["batchsweep"]["status"] == "skipped"
    second = run(tmp_path, "[batchsweep,load]", merge=True)
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert validation_errors(doc) == []
    for name in ("data", "pipeline", "datascale"):
        assert doc["sections"][name]["status"] == "ok"
        assert doc["sections"][name]["invocation"] == first["created_utc"]
    for name in ("batchsweep", "load"):
        assert doc["sections"][name]["status"] == "ok"
        assert doc["sections"][name]["invocation"] == second["created_utc"]
    assert doc["sections"]["scaling"]["status"] == "skipped"  # run by neither
    assert [i["sections"] for i in doc["invocations"]] == [["data", "pipeline", "datascale"], ["batchsweep", "load"]]
    assert all(i["wall_s"] is not None and i["wall_s"] >= 0 for i in doc["invocations"])
    # each invocation's monitor is kept, with its own timeline file
    assert "monitor" in doc["sections"] and "monitor_1" in doc["sections"]
    assert (tmp_path / "run" / "monitor.jsonl").is_file() and (tmp_path / "run" / "monitor_1.jsonl").is_file()
    html = (tmp_path / "run" / "report.html").read_text()
    assert first["created_utc"] in html and "section-monitor_1" in html


def test_merge_needs_an_earlier_run(tmp_path, cheap_sections):
    with pytest.raises(ConfigError) as err:
        run(tmp_path, "[data]", merge=True)
    assert "--merge" in str(err.value) and "results.json" in str(err.value)


def test_merge_refuses_a_different_config(tmp_path, cheap_sections):
    run(tmp_path, "[data]")
    with pytest.raises(ConfigError) as err:
        run(tmp_path, "[load]", merge=True, extra=["train.batch_size=7"])
    assert "train.batch_size" in str(err.value)
