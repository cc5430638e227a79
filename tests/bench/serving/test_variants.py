"""The servers a serving benchmark starts: variant specs and the ``mmscale serve`` arguments of each
(the runs themselves are covered by test_run.py)."""

import argparse
from dataclasses import replace

import pytest

from mmscale.bench.serving.config import SMOKE_DEFAULTS, ServeBenchConfig, smoke_config
from mmscale.bench.serving.variants import overload_bounds, overload_counts, parse_variant, serve_args
from mmscale.cli.serve import add_server_options, build_config
from mmscale.errors import ConfigError


def test_parse_variant():
    assert parse_variant("f4") == (4, False)
    assert parse_variant("f1+cg") == (1, True)
    for bad in ("4", "f0", "fx", "f2+graphs", "f2+cg+cg", "f2+cg64", "f2+pipe"):
        with pytest.raises(ConfigError, match="--variants"):
            parse_variant(bad)


def test_a_variant_sets_front_ends_and_graphs_and_the_main_server_leaves_them_to_the_host():
    cfg = ServeBenchConfig(device="cuda", max_wait_ms=1.0)
    out = serve_args(cfg, "batched", *parse_variant("f8+cg"))
    assert out[out.index("--frontends") + 1] == "8" and "--cuda-graphs" in out
    assert "--no-cuda-graphs" in serve_args(cfg, "batched", *parse_variant("f8"))
    main = serve_args(cfg, "batched")
    assert "--frontends" not in main and not any("graphs" in a for a in main)
    assert serve_args(replace(cfg, checkpoint="c.pt"), "naive")[-2:] == ["--checkpoint", "c.pt"]


def test_the_smoke_settings_yield_to_fields_given():
    cfg = smoke_config(cpu_smoke=True, concurrency="2")
    assert cfg.concurrency == "2" and cfg.preset == SMOKE_DEFAULTS["preset"] == "tiny"
    assert smoke_config(concurrency="2").preset == "base"  # no smoke: the defaults


def test_overload_bounds_follow_the_main_servers_flags_and_win():
    def parse(argv):
        parser = argparse.ArgumentParser()
        add_server_options(parser)
        return parser.parse_args(argv)

    cfg = ServeBenchConfig()
    assert overload_bounds(cfg) == []  # overload the swept server itself
    assert overload_counts(cfg) == [None]
    cfg = replace(cfg, overload_slo_ms=3.0, overload_max_queue="20,32")
    assert overload_counts(cfg) == [20, 32]  # one fresh overload server per count
    bounds = overload_bounds(cfg, 20)
    assert bounds == ["--slo-ms", "3.0", "--max-queue", "20"]
    # the main server's own --max-queue comes first; the serve CLI keeps the last one given
    served = build_config(parse(["--preset", "tiny", "--max-queue", "1024", *bounds]))
    assert (served.max_queue, served.slo_ms) == (20, 3.0)
