"""compare and report over benchmark run folders (rows.jsonl): each metric by variant, ratios to the first."""

from __future__ import annotations

import json

from mmscale.cli import main
from mmscale.report.compare_rows import compare_row_runs
from mmscale.result_rows import metric, row, write_rows

ENV = {"device": "cpu", "gpu": None, "cores": 2}


def run_folder(path, img_per_s: dict, env=ENV):
    rows = [row("data", variant, {"img_per_s": metric(v, "img/s")}, {"workers": 2})
            for variant, values in img_per_s.items() for v in values]
    write_rows(path, rows, environment=env)
    return str(path)


def test_each_metric_by_variant_with_the_ratio_to_the_first_run(tmp_path):
    a = run_folder(tmp_path / "a", {"ours_cpu": [100.0, 120.0, 110.0], "reference": [50.0]})
    b = run_folder(tmp_path / "b", {"ours_cpu": [220.0], "reference": [50.0], "new": [10.0]},
                   env={**ENV, "cores": 16})
    from mmscale.result_rows import read_rows

    result = compare_row_runs([read_rows(a), read_rows(b)])
    lines = {(r["variant"], r["metric"]): r for r in result["rows"]}
    assert lines[("ours_cpu", "img_per_s")]["values"] == [110.0, 220.0]  # a's median of its repeats
    assert lines[("ours_cpu", "img_per_s")]["ratios"] == [2.0]
    assert lines[("reference", "img_per_s")]["ratios"] == [1.0]
    assert lines[("new", "img_per_s")]["values"] == [None, 10.0] and lines[("new", "img_per_s")]["ratios"] == [None]
    assert result["environment_differences"] == [{"field": "cores", "values": [2, 16]}]


def test_compare_cli_reads_two_or_more_row_folders(tmp_path, capsys):
    a = run_folder(tmp_path / "a", {"ours_cpu": [100.0]})
    b = run_folder(tmp_path / "b", {"ours_cpu": [150.0]})
    c = run_folder(tmp_path / "c", {"ours_cpu": [50.0]})
    assert main(["compare", a, b]) == 0
    text = capsys.readouterr().out
    assert "ours_cpu" in text and "1.500x" in text
    assert main(["compare", a, b, c, "--json", "--out", str(tmp_path / "cmp")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runs"] == [a, b, c] and doc["rows"][0]["ratios"] == [1.5, 0.5]
    assert "ours_cpu" in (tmp_path / "cmp" / "compare.html").read_text()


def test_report_of_a_benchmark_folder_is_a_page_of_its_rows(tmp_path, capsys):
    a = run_folder(tmp_path / "a", {"ours_cpu": [123.0]})
    assert main(["report", a]) == 0
    page = (tmp_path / "a" / "report.html").read_text()
    assert "ours_cpu" in page and "img_per_s" in page and "<h2>Environment</h2>" in page
    assert main(["report", a, "--out", str(tmp_path / "pages")]) == 0
    assert (tmp_path / "pages" / "report.html").read_text() == page
