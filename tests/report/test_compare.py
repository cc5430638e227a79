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
