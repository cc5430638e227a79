"""The serving benchmark's variant handling on constructed results: spec parsing and the ratios
printed per server (the runs themselves are covered by tests/bench/test_load_benchmarks.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_parse_variant():
    import serve_load

    assert serve_load.parse_variant("f4") == (4, False)
    assert serve_load.parse_variant("f1+cg") == (1, True)
    for bad in ("4", "f0", "fx", "f2+graphs", "f2+cg+cg", "f2+cg64", "f2+pipe"):
        with pytest.raises(SystemExit, match="--variants"):
            serve_load.parse_variant(bad)


def test_a_variant_sets_front_ends_and_graphs_and_the_main_server_leaves_them_to_the_host():
    import argparse

    import serve_load

    args = argparse.Namespace(frontends=None, cuda_graphs=None, device="cuda", max_batch=256, max_wait_ms=1.0,
                              max_queue=4096, slo_ms=100.0, checkpoint="", preset="base", cpu_threads=0,
                              max_captions=0, server_set=[])
    out = serve_load.serve_args(args, "batched", *serve_load.parse_variant("f8+cg"))
    assert out[out.index("--frontends") + 1] == "8" and "--cuda-graphs" in out
    assert "--no-cuda-graphs" in serve_load.serve_args(args, "batched", *serve_load.parse_variant("f8"))
    main = serve_load.serve_args(args, "batched")
    assert "--frontends" not in main and not any("graphs" in a for a in main)


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


def test_server_side_counts_the_tail_from_the_histograms(monkeypatch):
    import io
    import urllib.request

    import serve_load

    text = "\n".join([
        'mmscale_batch_size_count{task="match"} 10.0', 'mmscale_batch_size_sum{task="match"} 40.0',
        'mmscale_batch_forward_seconds_count{task="match"} 10.0',
        'mmscale_batch_forward_seconds_sum{task="match"} 0.5',
        'mmscale_batch_forward_seconds_bucket{le="0.1",task="match"} 9.0',  # the order it is rendered in
        'mmscale_request_latency_seconds_count{endpoint="/v1/match"} 40.0',
        'mmscale_request_latency_seconds_bucket{endpoint="/v1/match",le="0.25"} 37.0',
        'mmscale_queue_wait_seconds_count{task="match"} 40.0', 'mmscale_queue_wait_seconds_sum{task="match"} 2.0',
        'mmscale_queue_wait_seconds_bucket{le="0.1",task="match"} 36.0',
        'mmscale_queue_wait_seconds_bucket{le="0.25",task="match"} 38.0', ""])
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(text.encode()))
    side = serve_load.server_side("http://x")
    assert side["mean_batch"] == 4.0 and side["mean_batch_ms"] == 50.0
    assert side["forwards_over_100ms"] == 1.0 and side["match_requests_over_250ms"] == 3.0
    assert side["match_requests"] == 40.0
    assert side["match_queue_waits_over_100ms"] == 4.0 and side["match_queue_waits_over_250ms"] == 2.0
    before = {**side, "batches": 4.0, "match_requests": 10.0, "match_requests_over_250ms": 3.0}
    during = serve_load.side_during("http://x", before)  # counters relative to the sweep's start
    assert during["sweep_batches"] == 6.0 and during["sweep_match_requests"] == 30.0
    assert during["sweep_match_requests_over_250ms"] == 0.0 and during["match_requests_over_250ms"] == 3.0
    fresh = serve_load.side_during("http://x", {key: float("nan") for key in serve_load.COUNTS})
    assert fresh["sweep_match_requests"] == 40.0  # no series yet at the start: zero
    assert fresh["sweep_mean_queue_wait_ms"] == pytest.approx(50.0)  # 2.0 s over 40 waits
    before = {**before, "match_queue_waits": 20.0, "match_queue_wait_sum_s": 1.8}
    assert serve_load.side_during("http://x", before)["sweep_mean_queue_wait_ms"] == pytest.approx(10.0)


def test_summary_ratios_when_the_naive_server_ran_other_levels():
    import serve_load

    server = {"server_cpu_pct": 100.0, "mean_batch": 10.0, "mean_batch_ms": 5.0}
    results = {"batched": {**server, "rows": [row(256, 3000.0)]}, "naive": {**server, "rows": [row(1, 60.0)]},
               "offline": {"samples_per_s": 6000.0}}
    out = serve_load.ratios(results, levels=[256], naive_levels=[1])
    assert out["ours at c=256 / naive at c=1"] == pytest.approx(50.0)
    both = serve_load.ratios({**results, "naive": {**server, "rows": [row(1, 60.0), row(256, 30.0)]}},
                             levels=[256], naive_levels=[1, 256])
    assert both["ours / naive at c=256"] == pytest.approx(100.0)


def test_overload_bounds_follow_the_main_servers_flags_and_win():
    import argparse

    import serve_load
    from mmscale.cli.serve import add_server_options, build_config

    def parse(argv):
        parser = argparse.ArgumentParser()
        add_server_options(parser)
        return parser.parse_args(argv)

    args = argparse.Namespace(overload_slo_ms=None, overload_max_queue=None)
    assert serve_load.overload_bounds(args) == []  # overload the swept server itself
    assert serve_load.overload_counts(args) == [None]
    args.overload_slo_ms, args.overload_max_queue = 3.0, "20,32"
    assert serve_load.overload_counts(args) == [20, 32]  # one fresh overload server per count
    bounds = serve_load.overload_bounds(args, 20)
    assert bounds == ["--slo-ms", "3.0", "--max-queue", "20"]
    # the main server's own --max-queue comes first; the serve CLI keeps the last one given
    cfg = build_config(parse(["--preset", "tiny", "--max-queue", "1024", *bounds]))
    assert (cfg.max_queue, cfg.slo_ms) == (20, 3.0)


def test_overload_table_has_one_line_per_bound_with_its_own_figures():
    import serve_load

    def run(count, served, refused, p99):
        return {"max_queue": count, "slo_ms": None, "capacity_req_per_s": 1000.0, "rejected_frac": refused,
                "admitted_p99_over_unloaded": p99 / 5.0,
                "row": {"throughput_per_s": served, "refused_p99_ms": 3.0, "p99_ms": p99}}

    lines = serve_load.format_overloads([run(8, 400.0, 0.8, 9.0), run(32, 900.0, 0.55, 40.0)]).splitlines()
    assert len(lines) == 4
    assert lines[2].split() == ["8", "-", "2000", "400", "80.0%", "3.0", "9.0", "1.80x"]
    assert lines[3].split()[0] == "32" and lines[3].split()[-1] == "8.00x"
