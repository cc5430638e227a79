"""CPU smoke run of ``mmscale bench serve`` (the GPU runs use the same code at full size)."""

import json

from mmscale.cli import main


def test_serve_benchmark_cpu_smoke(tmp_path, capsys):
    code = main(["bench", "serve", "--cpu-smoke", "--concurrency", "2", "--naive-concurrency", "2", "--window-s", "0.5",
                 "--max-windows", "1", "--overload-s", "1", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "serve_load.json").read_text())
    assert results["offline"]["samples_per_s"] > 0
    assert results["args"]["preset"] == "tiny" and results["args"]["concurrency"] == "2"  # smoke under the flags
    for server in ("batched", "naive"):
        (row,) = results[server]["rows"]
        refused = sum(n for status, n in row["errors_by_status"].items() if status in ("429", "503"))
        # admission may refuse a few on a loaded CPU (expected wait > SLO); nothing else may fail
        assert row["server"] == server and row["ok"] > 0 and row["ok"] + refused == row["requests"]
    overload = results["overload"]
    assert overload["server_alive"] is True
    assert overload["goodput_over_capacity"] == overload["row"]["goodput_per_s"] / overload["capacity_req_per_s"]
    summary = results["summary"]
    assert summary["ours / naive at c=2"] > 0 and "overload goodput / capacity" in summary
    printed = capsys.readouterr().out
    assert "ours / naive at c=2" in printed.splitlines()[-len(summary):][3]

