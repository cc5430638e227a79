"""``mmscale serve`` flags reach the config, unset ones stay for the host to choose, and bad values
are refused naming the field."""

import argparse

import pytest

from mmscale.cli.serve import add_server_options, build_config
from mmscale.errors import ConfigError


def parse(argv):
    parser = argparse.ArgumentParser()
    add_server_options(parser)
    return parser.parse_args(argv)


def test_flags_reach_the_config():
    cfg = build_config(parse(["--preset", "tiny", "--frontends", "3", "--cuda-graphs", "--max-batch", "8",
                              "--max-wait-ms", "0.5", "--slo-ms", "80"]))
    assert (cfg.frontends, cfg.cuda_graphs, cfg.max_batch, cfg.max_wait_ms, cfg.slo_ms) == (3, True, 8, 0.5, 80.0)
    assert build_config(parse(["--preset", "tiny", "--no-cuda-graphs"])).cuda_graphs is False


def test_unset_flags_are_left_for_the_host_to_choose():
    cfg = build_config(parse(["--preset", "tiny"]))
    assert (cfg.frontends, cfg.cuda_graphs, cfg.max_batch, cfg.max_wait_ms) == (None, None, None, None)
    assert cfg.slo_ms == 100.0


def test_trim_reaches_the_batcher_as_the_predictors_cut():
    from mmscale.serve.app import make_runner
    from mmscale.serve.defaults import resolve
    from mmscale.serve.metrics import ServerMetrics
    from mmscale.serve.predictor import ModelPredictor

    class Padded:
        pad_buckets = True

        def predict(self, task, items):
            return []

        batch_size_for = ModelPredictor.batch_size_for

    cfg = resolve(build_config(parse(["--preset", "tiny"])), cuda=False, cores=2)
    fit = make_runner(Padded(), cfg, ServerMetrics()).fit
    assert (fit(69), fit(48), fit(40)) == (64, 48, 40)  # cut only above 48


@pytest.mark.parametrize("argv, field", [(["--frontends", "0"], "serve.frontends"),
                                         (["--max-batch", "0"], "serve.max_batch"),
                                         (["--slo-ms", "-1"], "serve.slo_ms"),
                                         (["--max-wait-ms", "-1"], "serve.max_wait_ms"),
                                         (["--set", "serve.http=h11"], "serve.http")])
def test_bad_values_name_the_field(argv, field):
    with pytest.raises(ConfigError, match=field):
        build_config(parse(["--preset", "tiny", *argv])).validate()
