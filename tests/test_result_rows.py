"""The one result-row schema: rows written as rows.jsonl (and rows.csv) read back the same."""

from __future__ import annotations

import csv

import pytest

from mmscale.errors import DataError
from mmscale.result_rows import metric, read_rows, row, write_rows

ENV = {"device": "cpu", "gpu": None, "cores": 2, "host": "5bce98f73f3e"}


def sample_rows() -> list[dict]:
    return [row("data", "ours_cpu", {"img_per_s": metric(2310.5, "img/s"), "vs_reference": metric(float("nan"), "x")},
                {"workers": 8, "model": {"fusion": "fused"}, "sizes": [1, 2]}),
            row("data", "reference_dataloader", {"img_per_s": metric(1000, "img/s")}, {"workers": 8})]


def test_rows_round_trip_through_jsonl_and_csv(tmp_path):
    paths = write_rows(tmp_path, sample_rows(), csv_too=True, environment=ENV)
    assert [p.name for p in paths] == ["rows.jsonl", "rows.csv"]
    back = read_rows(tmp_path)
    assert [r["variant"] for r in back] == ["ours_cpu", "reference_dataloader"]
    assert list(back[0]) == ["benchmark", "variant", "environment", "config", "metrics", "time"]
    assert back[0]["metrics"]["img_per_s"] == {"value": 2310.5, "unit": "img/s"}
    assert back[0]["metrics"]["vs_reference"] == {"value": None, "unit": "x"}  # NaN: not measured
    assert back[0]["config"] == {"workers": 8, "model.fusion": "fused", "sizes": [1, 2]}  # flat
    assert back[0]["environment"] == ENV and back[0]["time"].endswith("Z")

    with open(tmp_path / "rows.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2
    assert list(table[0])[:3] == ["benchmark", "variant", "time"]
    assert {"env.cores", "config.model.fusion", "metrics.img_per_s [img/s]", "metrics.vs_reference [x]"} <= set(table[0])
    assert table[0]["metrics.img_per_s [img/s]"] == "2310.5" and table[0]["config.sizes"] == "[1, 2]"
    assert table[1]["metrics.img_per_s [img/s]"] == "1000"
    assert table[1]["metrics.vs_reference [x]"] == "" and table[1]["config.model.fusion"] == ""


def test_rows_of_other_benchmarks_in_the_folder_are_kept_and_this_ones_replaced(tmp_path):
    write_rows(tmp_path, [row("datascale", "n=100", {"samples_per_s": metric(5.0, "samples/s")})], environment=ENV)
    write_rows(tmp_path, sample_rows(), environment=ENV)
    write_rows(tmp_path, sample_rows()[:1], environment=ENV)  # data again: its earlier two rows go
    assert [(r["benchmark"], r["variant"]) for r in read_rows(tmp_path)] == [("datascale", "n=100"), ("data", "ours_cpu")]
    write_rows(tmp_path, sample_rows()[:1], environment=ENV, keep_others=False)
    assert [r["benchmark"] for r in read_rows(tmp_path / "rows.jsonl")] == ["data"]


def test_a_line_that_is_not_a_row_names_the_file_and_line(tmp_path):
    write_rows(tmp_path, sample_rows(), environment=ENV)
    with open(tmp_path / "rows.jsonl", "a") as f:
        f.write('{"benchmark": "data", "variant": "x"}\n')
    with pytest.raises(DataError) as err:
        read_rows(tmp_path)
    assert err.value.line == 3 and "missing environment, config, metrics, time" in err.value.reason
    with pytest.raises(DataError, match="no rows.jsonl here"):
        read_rows(tmp_path / "empty")
