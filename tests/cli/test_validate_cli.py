"""CLI of validate, report and compare: thin wrappers that parse, call and print."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mmscale.cli import main
from mmscale.report.results import write_results

_spec = importlib.util.spec_from_file_location(
    "report_helpers", Path(__file__).parents[1] / "report" / "report_helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


def test_validate_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = capsys.readouterr().out
    assert "--preset" in out and "--data" in out and "mmscale report RUN_DIR" in out


def test_bench_help_lists_the_scalability_benchmarks(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert "datascale" in out and "batchsweep" in out and "scaling" in out


def test_validate_bad_override_is_one_line_error(capsys, tmp_path):
    assert main(["validate", "--preset", "cpu", "--out", str(tmp_path), "validate.sections=[\"nope\"]"]) == 2
    err = capsys.readouterr().err
    assert "validate.sections" in err and "Traceback" not in err
    assert main(["validate", "--preset", "cpu", "--out", str(tmp_path), "serve.port=1"]) == 2


def test_report_rerenders_and_compare_gates_on_regressions(capsys, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_results(helpers.sample_results(), a)
    write_results(helpers.sample_results(throughput=[99, 104, 97, 102, 100]), b)
    write_results(helpers.sample_results(throughput=[80, 82, 79, 81, 83]), c)
    assert main(["report", str(a)]) == 0
    assert (a / "report.html").read_text().startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    assert "REGRESSION" not in capsys.readouterr().out
    assert main(["compare", str(a), str(c), "--out", str(tmp_path / "a_vs_c")]) == 3
    assert "REGRESSION" in capsys.readouterr().out and (tmp_path / "a_vs_c" / "compare.html").is_file()
    assert main(["compare", str(a), str(c), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["regressions"] == ["batchsweep.fp32.samples_per_s@8"]


def test_report_out_is_a_folder_and_an_html_file_there_is_a_one_line_error(capsys, tmp_path):
    write_results(helpers.sample_results(), tmp_path / "a")
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "pages")]) == 0
    assert (tmp_path / "pages" / "report.html").is_file() and (tmp_path / "pages" / "csv").is_dir()
    assert not (tmp_path / "a" / "report.html").exists()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "old.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "folder" in err and "Traceback" not in err
    assert f"pass --out {tmp_path}," in err and not (tmp_path / "old.html").exists()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "c.html")]) == 2
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--html", str(tmp_path / "c.html")]) == 2
    err = capsys.readouterr().err  # the retired flag names what replaced it
    assert "--html: is replaced by --out DIR" in err and f"pass --out {tmp_path}" in err


def test_report_on_a_directory_without_results_is_a_clear_error(capsys, tmp_path):
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


@pytest.mark.parametrize("as_json", [False, True])
def test_a_failed_section_fails_the_command_with_or_without_json(monkeypatch, capsys, tmp_path, as_json):
    import mmscale.cli.validate

    sections = {"data": {"status": "failed", "reason": "constructed", "verdicts": []},
                "train": {"status": "ok", "reason": "", "verdicts": []}}
    monkeypatch.setattr(mmscale.cli.validate, "validate", lambda **kwargs: {"sections": sections})
    argv = ["validate", "--out", str(tmp_path)] + (["--json"] if as_json else [])
    assert main(argv) == 1
    if as_json:
        assert json.loads(capsys.readouterr().out)["sections"]["data"]["status"] == "failed"


def test_the_answer_ends_the_output_and_is_in_the_json(monkeypatch, capsys, tmp_path):
    import mmscale.cli.validate

    answer = {"lines": ["training throughput per GPU: 1.1k samples/s", "bottleneck: input-bound"]}
    doc = {"sections": {"data": {"status": "ok", "reason": None, "verdicts": [{"level": "pass", "text": "fine"}]}},
           "answer": answer}
    monkeypatch.setattr(mmscale.cli.validate, "validate", lambda **kwargs: doc)
    assert main(["validate", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-4:-1] == ["answer:", "  training throughput per GPU: 1.1k samples/s", "  bottleneck: input-bound"]
    assert main(["validate", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == answer
