import json

from mmscale.train import train
from mmscale.train.monitoring import MONITOR_FILE, finish_monitor, mark_step, start_monitor
from tests.train.test_loop import tiny_job


def _read(path):
    rows = [json.loads(line) for line in open(path)]
    return [r for r in rows if "mark" not in r], [r for r in rows if "mark" in r]


def test_a_training_run_writes_a_timeline_with_a_mark_per_log_step(tiny_dataset, tmp_path):
    result = train(tiny_job(tiny_dataset, tmp_path, "train.steps=3"), monitor_interval_s=0.05)
    samples, marks = _read(tmp_path / MONITOR_FILE)
    assert [m["mark"] for m in marks] == ["step=1", "step=2", "step=3"]
    assert samples and all("cpu_pct" in r and "rss_gib" in r for r in samples)  # CPU fields, GPU or not
    # every mark lies inside the sampled span: the timeline covers the steps it marks
    assert samples[0]["t_s"] <= marks[0]["t_s"] and marks[-1]["t_s"] <= samples[-1]["t_s"]
    assert result.monitor["file"] == str(tmp_path / MONITOR_FILE)
    assert result.monitor["samples"] >= len(samples) >= 2
    assert result.monitor["fields"]["rss_gib"]["max"] > 0
    assert "t_s" not in result.monitor["fields"]
    assert json.loads((tmp_path / "result.json").read_text())["monitor"]["samples"] == result.monitor["samples"]


def test_interval_zero_runs_without_a_monitor(tiny_dataset, tmp_path):
    result = train(tiny_job(tiny_dataset, tmp_path, "train.steps=1"), monitor_interval_s=0)
    assert result.monitor == {} and not (tmp_path / MONITOR_FILE).exists()


def test_only_the_first_rank_samples():
    assert start_monitor(0.1, is_main=False) is None
    assert start_monitor(0.0, is_main=True) is None
    mark_step(None, 1)  # no monitor: a no-op, not an error
    assert finish_monitor(None, "unused") == {}


def test_a_negative_interval_is_refused_before_any_work(tiny_dataset, tmp_path):
    import pytest

    with pytest.raises(ValueError, match="monitor_interval_s"):
        train(tiny_job(tiny_dataset, tmp_path), monitor_interval_s=-1)
    assert not (tmp_path / "config.json").exists()
