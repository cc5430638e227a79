"""results.json: the schema accepts what validate writes and rejects what it must not."""

from __future__ import annotations

import json
import math

import pytest

from mmscale.errors import DataError
from mmscale.report import results


def test_sample_document_is_valid_and_round_trips(tmp_path, helpers):
    doc = helpers.sample_results()
    assert results.validation_errors(doc) == []
    path = results.write_results(doc, tmp_path)
    assert results.read_results(tmp_path) == json.loads(path.read_text())


def test_non_finite_numbers_become_null_not_invalid_json(tmp_path, helpers):
    doc = helpers.sample_results()
    doc["sections"]["batchsweep"]["summary"]["ratio"] = math.inf
    doc["sections"]["batchsweep"]["rows"][0]["step_ms"] = math.nan
    path = results.write_results(doc, tmp_path)
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["sections"]["batchsweep"]["summary"]["ratio"] is None


@pytest.mark.parametrize("breakage, where", [
    (lambda d: d["sections"]["batchsweep"].update(status="done"), "/sections/batchsweep/status"),
    (lambda d: d["sections"]["load"].update(reason=None), "/sections/load/reason"),
    (lambda d: d["sections"]["batchsweep"]["verdicts"].append({"level": "meh", "text": "x"}), "/sections/batchsweep/verdicts/2/level"),
    (lambda d: d["sections"]["batchsweep"]["charts"][0].pop("series"), "/sections/batchsweep/charts/0"),
    (lambda d: d["metrics"]["load.p99_ms@c4"].update(values=[]), "/metrics/load.p99_ms@c4/values"),
    (lambda d: d.pop("environment"), "/"),
])
def test_schema_rejects_broken_documents(tmp_path, helpers, breakage, where):
    doc = helpers.sample_results()
    breakage(doc)
    problems = results.validation_errors(doc)
    assert problems and any(p.startswith(where) for p in problems), problems
    with pytest.raises(ValueError, match="schema"):
        results.write_results(doc, tmp_path)


def test_read_results_names_the_file_when_missing_or_broken(tmp_path):
    with pytest.raises(DataError, match="no results.json"):
        results.read_results(tmp_path)
    (tmp_path / "results.json").write_text("{\n  \"schema_version\": 1,\n  oops")
    with pytest.raises(DataError) as err:
        results.read_results(tmp_path)
    assert err.value.line == 3
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(DataError, match="schema"):
        results.read_results(tmp_path)
