"""``bench load --spawn --out R.json`` records the spawned server's hardware timeline beside the
results (R.server_monitor.jsonl) and its summary inside them, with a real server and real HTTP."""

import json

import pytest

from mmscale.cli import main
from mmscale.cli.bench.load import default_monitor_file
from mmscale.monitor.brief import summarize_file


def test_default_timeline_name_sits_beside_the_results():
    assert default_monitor_file("runs/a/load.json") == "runs/a/load.server_monitor.jsonl"
    assert default_monitor_file("load") == "load.server_monitor.jsonl"


@pytest.mark.slow
def test_a_spawned_server_leaves_its_timeline_and_summary(tmp_path, capsys):
    out = tmp_path / "load.json"
    code = main(["bench", "load", "--spawn", "--preset", "tiny", "--device", "cpu", "--cpu-threads", "1",
                 "--concurrency", "1", "--rates", "", "--window-s", "0.5", "--max-windows", "1",
                 "--warmup-s", "0.1", "--processes", "1", "--monitor-interval", "0.05", "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["rows"][0]["ok"] > 0
    timeline = tmp_path / "load.server_monitor.jsonl"
    rows = [json.loads(line) for line in timeline.read_text().splitlines()]
    summary = result["server_monitor"]
    assert summary["file"] == str(timeline) and summary["samples"] == len(rows) >= 5
    times = [r["t_s"] for r in rows]
    assert times == sorted(times) and summary["fields"]["rss_gib"]["min"] > 0
    assert f"server hardware: {len(rows)} samples" in capsys.readouterr().out


def test_summary_of_a_missing_or_empty_file_is_empty(tmp_path):
    assert summarize_file(tmp_path / "none.jsonl") == {}
    (tmp_path / "empty.jsonl").write_text('{"t_s": 1.0, "mark": "step=1"}\n')
    assert summarize_file(tmp_path / "empty.jsonl") == {}
    (tmp_path / "two.jsonl").write_text('{"t_s": 0.0, "cpu_pct": 10}\n{"t_s": 0.5, "cpu_pct": 30}\n')
    brief = summarize_file(tmp_path / "two.jsonl")
    assert brief["samples"] == 2 and brief["achieved_hz"] == pytest.approx(2.0)
    assert brief["fields"]["cpu_pct"] == {"mean": 20.0, "min": 10.0, "max": 30.0}
