"""The serving benchmark's variant handling on constructed results: spec parsing and the ratios
printed per server (the runs themselves are covered by tests/bench/test_load_benchmarks.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_parse_variant():
    import serve_load

    assert serve_load.parse_variant("f4") == (4, False, False)
    assert serve_load.parse_variant("f1+cg") == (1, True, False)
    assert serve_load.parse_variant("f4+cg+pipe") == (4, True, True)
    for bad in ("4", "f0", "fx", "f2+graphs", "f2+cg+cg"):
        with pytest.raises(SystemExit, match="--variants"):
            serve_load.parse_variant(bad)


def row(c, req_per_s, p50_ms=5.0, p99_ms=50.0):
    return {"mode": "closed", "concurrency": c, "throughput_per_s": req_per_s, "p50_ms": p50_ms, "p99_ms": p99_ms}


def test_variant_ratios_compare_each_server_at_its_levels():
    import serve_load

    server = {"mean_batch": 10.0, "mean_batch_ms": 4.0, "server_cpu_pct": 100.0}
    results = {
        "args": {"frontends": 1, "cuda_graphs": False},
        "offline": {"samples_per_s": 4000.0},
        "batched": {**server, "rows": [row(1, 50, p50_ms=16.0), row(64, 1000), row(256, 1500, p99_ms=300.0)]},
        "naive": {**server, "rows": [row(1, 60), row(256, 100)]},
        "variants": {"f4+cg": {**server, "rows": [row(1, 120, p50_ms=7.0), row(256, 3200, p99_ms=120.0)]},
                     "f2": {**server, "rows": [row(4, 300), row(128, 2000)]}},
    }
    lines = {v["server"]: v for v in serve_load.variant_ratios(results, naive_levels=[1, 256])}
    assert list(lines) == ["batched f1", "f4+cg", "f2"]
    assert lines["batched f1"]["p50_ms_low"] == 16.0 and lines["batched f1"]["over_naive"] == 15.0
    assert lines["f4+cg"]["over_naive"] == 32.0 and lines["f4+cg"]["over_offline"] == 0.8
    assert lines["f4+cg"]["p99_ms_top"] == 120.0 and lines["f4+cg"]["top_c"] == 256
    assert lines["f2"]["over_naive"] is None  # naive never ran at c=128: no ratio rather than a wrong one
    table = serve_load.format_variants(list(lines.values()))
    assert "32.0x" in table and "80.0%" in table and table.count("\n") == 4
