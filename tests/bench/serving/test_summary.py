"""The serving benchmark's conclusions on constructed results: the ratios per server and the summary."""

import pytest

from mmscale.bench.serving.summary import format_peers, peer_ratios, ratios


def row(c, req_per_s, p50_ms=5.0, p99_ms=50.0):
    return {"mode": "closed", "concurrency": c, "throughput_per_s": req_per_s, "p50_ms": p50_ms, "p99_ms": p99_ms}


def test_peer_ratios_compare_each_server_at_its_levels():
    server = {"mean_batch": 10.0, "mean_batch_ms": 4.0, "server_cpu_pct": 100.0}
    results = {
        "args": {"frontends": 1, "cuda_graphs": False},
        "offline": {"samples_per_s": 4000.0},
        "batched": {**server, "rows": [row(1, 50, p50_ms=16.0), row(64, 1000), row(256, 1500, p99_ms=300.0)]},
        "naive": {**server, "rows": [row(1, 60), row(256, 100)]},
        "peers": {"f1 json": {**server, "rows": [row(1, 120, p50_ms=7.0), row(256, 3200, p99_ms=120.0)]},
                  "litserve json": {**server, "rows": [row(4, 300), row(128, 2000)]}},
    }
    lines = {v["server"]: v for v in peer_ratios(results, naive_levels=[1, 256])}
    assert list(lines) == ["batched f1", "f1 json", "litserve json"]
    assert lines["batched f1"]["p50_ms_low"] == 16.0 and lines["batched f1"]["over_naive"] == 15.0
    assert lines["f1 json"]["over_naive"] == 32.0 and lines["f1 json"]["over_offline"] == 0.8
    assert lines["f1 json"]["p99_ms_top"] == 120.0 and lines["f1 json"]["top_c"] == 256
    assert lines["litserve json"]["over_naive"] is None  # naive never ran at c=128: no ratio rather than a wrong one
    table = format_peers(list(lines.values()))
    assert "32.0x" in table and "80.0%" in table and table.count("\n") == 4


def test_summary_ratios_when_the_naive_server_ran_other_levels():
    server = {"server_cpu_pct": 100.0, "mean_batch": 10.0, "mean_batch_ms": 5.0}
    results = {"batched": {**server, "rows": [row(256, 3000.0)]}, "naive": {**server, "rows": [row(1, 60.0)]},
               "offline": {"samples_per_s": 6000.0}}
    out = ratios(results, levels=[256], naive_levels=[1])
    assert out["ours at c=256 / naive at c=1"] == pytest.approx(50.0)
    both = ratios({**results, "naive": {**server, "rows": [row(1, 60.0), row(256, 30.0)]}},
                  levels=[256], naive_levels=[1, 256])
    assert both["ours / naive at c=256"] == pytest.approx(100.0)
