"""CPU smoke tests of the serving benchmark scripts (the GPU runs use the same code at full size)."""

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_serve_load_cpu_smoke(tmp_path, capsys):
    import serve_load

    code = serve_load.main(["--cpu-smoke", "--concurrency", "2", "--naive-concurrency", "2", "--window-s", "0.5",
                            "--max-windows", "1", "--overload-s", "1", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "serve_load.json").read_text())
    assert results["offline"]["samples_per_s"] > 0
    for server in ("batched", "naive"):
        (row,) = results[server]["rows"]
        assert row["server"] == server and row["ok"] == row["requests"] > 0
    assert results["overload"]["server_alive"] is True
    summary = results["summary"]
    assert summary["ours / naive at c=2"] > 0
    printed = capsys.readouterr().out
    assert "ours / naive at c=2" in printed.splitlines()[-len(summary):][3]


def test_serve_startup_cpu_smoke_times_a_real_server_start(tmp_path, capsys):
    import serve_startup

    assert serve_startup.main(["--cpu-smoke", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "serve_startup.json").read_text())
    (row,) = doc["rows"]
    # no graphs on CPU, and no NVML figure is made up where there is no GPU
    assert row["setting"] == "no graphs" and row["graphs"] == 0 and row["ready_vs_first"] == 1.0
    assert 0 < row["ready_s"] < 120
    if doc["idle_device_gib"] is None:
        assert row["memory_gib"] is None
    assert "no graphs" in capsys.readouterr().out.splitlines()[-1]


def test_serve_startup_reads_the_graph_count_the_server_logs():
    import serve_startup

    line = "INFO mmscale.serve.predictor: CUDA graphs: recorded 95 of 95 small-batch shapes (batches up to 64)"
    found = serve_startup.RECORDED.search(line)
    assert (found.group(1), found.group(2)) == ("95", "95")
    import inspect

    from mmscale.serve.predictor import ModelPredictor

    # the pattern must follow the log line the predictor writes
    assert "CUDA graphs: recorded %d of %d" in inspect.getsource(ModelPredictor.use_graphs)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_load_crosscheck_cpu_smoke(tmp_path):
    import load_crosscheck

    code = load_crosscheck.main(["--cpu-smoke", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "load_crosscheck.json").read_text())
    ours, wrk = result["ours"], result["wrk"]
    assert ours["throughput_per_s"] > 0 and wrk["throughput_per_s"] > 0
    assert wrk["p50_ms"] > 0 and "throughput_ratio" in result
