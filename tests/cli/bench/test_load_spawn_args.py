"""``bench load --spawn`` forwards the server's scaling and monitor options to ``mmscale serve``."""

import argparse

import pytest

from mmscale.cli.bench import load as bench_load


def parse(argv):
    parser = argparse.ArgumentParser()
    bench_load.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_frontends_and_cuda_graphs_reach_the_spawned_server():
    out = bench_load.spawn_args(parse(["load", "--spawn", "--frontends", "3", "--cuda-graphs"]))
    assert out[out.index("--frontends") + 1] == "3" and "--cuda-graphs" in out


def test_unset_options_are_not_forwarded():
    out = bench_load.spawn_args(parse(["load", "--spawn"]))
    assert "--frontends" not in out and "--cuda-graphs" not in out and out[-2:] == ["--preset", "tiny"]


def test_the_slo_and_graphs_off_reach_the_spawned_server():
    out = bench_load.spawn_args(parse(["load", "--spawn", "--slo-ms", "120", "--no-cuda-graphs"]))
    assert out[out.index("--slo-ms") + 1] == "120.0" and "--no-cuda-graphs" in out
    plain = bench_load.spawn_args(parse(["load", "--spawn"]))
    assert "--slo-ms" not in plain and "--no-cuda-graphs" not in plain


def test_the_monitor_is_asked_of_the_spawned_server_and_refused_with_url():
    from mmscale.errors import ConfigError

    out = bench_load.spawn_args(parse(["load", "--spawn", "--monitor", "t.jsonl", "--monitor-interval", "0.5"]))
    assert out[out.index("--monitor") + 1] == "t.jsonl" and out[out.index("--monitor-interval") + 1] == "0.5"
    assert "--monitor" not in bench_load.spawn_args(parse(["load", "--spawn"]))
    with pytest.raises(ConfigError, match="--monitor"):
        bench_load.run(parse(["load", "--url", "http://127.0.0.1:9", "--monitor", "t.jsonl"]))
