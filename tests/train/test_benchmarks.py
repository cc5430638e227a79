"""CPU smoke runs of the training benchmarks: every row runs and the table is printed."""

import json

import pytest

def test_train_step_smoke_runs_every_row(tmp_path, capsys, load_benchmark):
    bench = load_benchmark("train_step")
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "0", "--out", str(tmp_path)])
    statuses = {row["variant"]: row["status"] for row in result["rows"]}
    assert set(statuses) == set(bench.VARIANTS)
    assert all(status.startswith("ok") for status in statuses.values()), statuses
    assert all(row["samples_per_s"] > 0 and row["gflops_per_sample"] > 0 for row in result["rows"])
    assert "ours_over_reference_fp32" in result["ratios"]
    assert json.loads((tmp_path / "train_step.json").read_text())["batch"] == 4
    assert "ours_over_hf_blip_itm" in capsys.readouterr().out


def test_ratios_are_ours_over_each_row(load_benchmark):
    bench = load_benchmark("train_step")
    rows = [bench.StepRow("ours", 4, "cpu", samples_per_s=300.0),
            bench.StepRow("reference_fp32", 4, "cpu", samples_per_s=100.0),
            bench.StepRow("hf_blip_itm", 4, "cpu", status="oom")]
    assert bench.ratios(rows) == {"ours_over_reference_fp32": pytest.approx(3.0)}
