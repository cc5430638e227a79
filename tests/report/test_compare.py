"""compare: a planted regression is flagged, run-to-run noise is not."""

from __future__ import annotations

from mmscale.report.compare import compare_runs, format_text, render_compare_html


def verdicts(result):
    return {r["metric"]: r["verdict"] for r in result["rows"]}


def test_noise_is_not_a_regression(helpers):
    base = helpers.sample_results()
    again = helpers.sample_results(throughput=[99, 104, 97, 102, 100], p99=[51, 50, 53])
    result = compare_runs(base, again)
    assert set(verdicts(result).values()) == {"within noise"}
    assert result["regressions"] == []


def test_planted_regressions_are_flagged_in_both_directions(helpers):
    base = helpers.sample_results()
    # 20% fewer samples/s (higher is better) and 40% more p99 latency (lower is better)
    worse = helpers.sample_results(throughput=[80, 82, 79, 81, 83], p99=[70, 72, 69])
    result = compare_runs(base, worse)
    assert verdicts(result) == {"batchsweep.fp32.samples_per_s@8": "regression", "load.p99_ms@c4": "regression"}
    text = format_text(result, "runs/a", "runs/b")
    assert text.count("REGRESSION") == 2
    html = render_compare_html(result, "runs/a", "runs/b")
    assert html.count("<b>REGRESSION</b>") == 2


def test_improvement_and_missing_metric(helpers):
    base = helpers.sample_results()
    better = helpers.sample_results(throughput=[130, 131, 129, 132, 130])
    del better["metrics"]["load.p99_ms@c4"]
    result = compare_runs(base, better)
    assert verdicts(result) == {"batchsweep.fp32.samples_per_s@8": "improvement", "load.p99_ms@c4": "only in one run"}


def test_environment_differences_are_listed(helpers):
    base, other = helpers.sample_results(), helpers.sample_results()
    other["environment"]["gpus"] = [{"name": "NVIDIA H100 80GB HBM3"}]
    other["environment"]["torch"]["version"] = "2.11.0"
    fields = {d["field"] for d in compare_runs(base, other)["environment_differences"]}
    assert {"gpus", "torch.version"} <= fields


def test_predictions_of_run_a_are_set_against_what_run_b_measured(helpers):
    from mmscale.report.results import metric

    predicting = helpers.full_results()  # predicts ~995 samples/s at 1M samples, 95% about 951-1040
    measured = helpers.sample_results()
    measured["metrics"]["datascale.samples_per_s@1000000"] = metric([990.0], "samples/s", True, "datascale")
    measured["metrics"]["scaling.ddp.weak.efficiency@x8"] = metric([0.5], "", True, "scaling")
    rows = {r["metric"]: r for r in compare_runs(predicting, measured)["predictions"]}
    assert set(rows) == {"datascale.samples_per_s@1000000", "scaling.ddp.weak.efficiency@x8"}
    assert rows["datascale.samples_per_s@1000000"]["verdict"] == "confirmed (inside the interval)"
    assert rows["scaling.ddp.weak.efficiency@x8"]["verdict"] == "missed (outside the interval)"
    assert rows["scaling.ddp.weak.efficiency@x8"]["error_rel"] > 0.6  # predicted 0.85 where 0.5 was measured
    text = format_text(compare_runs(predicting, measured), "runs/a", "runs/b")
    assert "A predicted ddp weak-scaling efficiency at 8 ranks" in text and "missed" in text
    assert "A's predictions that B measured" in render_compare_html(compare_runs(predicting, measured), "a", "b")
