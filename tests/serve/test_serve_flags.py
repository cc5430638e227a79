"""``mmscale serve`` flags for the front-end processes and CUDA graphs reach the config, and bad
values are refused naming the field."""

import argparse

import pytest

from mmscale.cli.serve import add_server_options, build_config
from mmscale.errors import ConfigError


def parse(argv):
    parser = argparse.ArgumentParser()
    add_server_options(parser)
    return parser.parse_args(argv)


def test_flags_reach_the_config():
    cfg = build_config(parse(["--preset", "tiny", "--frontends", "3", "--cuda-graphs", "--cuda-graph-max-batch", "8"]))
    assert (cfg.frontends, cfg.cuda_graphs, cfg.cuda_graph_max_batch) == (3, True, 8)
    default = build_config(parse(["--preset", "tiny"]))
    assert (default.frontends, default.cuda_graphs) == (1, False)


def test_admission_and_pipeline_flags_reach_the_config():
    cfg = build_config(parse(["--preset", "tiny", "--max-queue-ms", "80", "--prepare-ahead"]))
    assert (cfg.max_queue_ms, cfg.prepare_ahead) == (80.0, True)
    default = build_config(parse(["--preset", "tiny"]))
    assert (default.max_queue_ms, default.prepare_ahead) == (0.0, False)


@pytest.mark.parametrize("argv, field", [(["--frontends", "0"], "serve.frontends"),
                                         (["--max-queue-ms", "-1"], "serve.max_queue_ms"),
                                         (["--cuda-graph-max-batch", "0"], "serve.cuda_graph_max_batch")])
def test_bad_values_name_the_field(argv, field):
    with pytest.raises(ConfigError, match=field):
        build_config(parse(["--preset", "tiny", *argv])).validate()
