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


def test_monitor_flags_reach_the_config(tmp_path):
    cfg = build_config(parse(["--preset", "tiny", "--monitor", str(tmp_path / "m.jsonl"), "--monitor-interval", "0.5"]))
    assert (cfg.monitor_file, cfg.monitor_interval_s) == (str(tmp_path / "m.jsonl"), 0.5)
    default = build_config(parse(["--preset", "tiny"]))
    assert (default.monitor_file, default.monitor_interval_s) == (None, 0.2)


def test_trim_setting_reaches_the_batcher_as_the_predictors_cut():
    from mmscale.serve.app import make_runner
    from mmscale.serve.metrics import ServerMetrics
    from mmscale.serve.predictor import ModelPredictor

    class Padded:
        pad_buckets = True

        def predict(self, task, items):
            return []

        batch_size_for = ModelPredictor.batch_size_for

    cfg = build_config(parse(["--preset", "tiny", "--trim-batches-above", "70"]))
    assert cfg.trim_batches_above == 70 and make_runner(Padded(), cfg, ServerMetrics()).fit(69) == 69
    assert make_runner(Padded(), build_config(parse(["--preset", "tiny"])), ServerMetrics()).fit(69) == 64  # 48
    off = build_config(parse(["--preset", "tiny", "--set", "serve.trim_batches_above=0"]))
    assert make_runner(Padded(), off, ServerMetrics()).fit is None


def test_http_parser_is_chosen_like_uvicorn_and_a_missing_one_is_refused(monkeypatch):
    from mmscale.serve import config

    assert build_config(parse(["--preset", "tiny", "--set", "serve.http=h11"])).http_parser() == "h11"
    monkeypatch.setattr(config, "httptools_installed", lambda: False)
    cfg = build_config(parse(["--preset", "tiny"]))
    assert (cfg.http, cfg.http_parser()) == ("auto", "h11")  # auto without httptools: uvicorn's fallback
    with pytest.raises(ConfigError, match="serve.http.*httptools is not installed"):
        build_config(parse(["--preset", "tiny", "--set", "serve.http=httptools"])).validate()
    monkeypatch.setattr(config, "httptools_installed", lambda: True)
    assert build_config(parse(["--preset", "tiny"])).http_parser() == "httptools"


@pytest.mark.parametrize("argv, field", [(["--frontends", "0"], "serve.frontends"),
                                         (["--set", "serve.http=fast"], "serve.http"),
                                         (["--max-queue-ms", "-1"], "serve.max_queue_ms"),
                                         (["--set", "serve.trim_batches_above=-1"], "serve.trim_batches_above"),
                                         (["--cuda-graph-max-batch", "0"], "serve.cuda_graph_max_batch"),
                                         (["--monitor-interval", "0"], "serve.monitor_interval_s"),
                                         (["--monitor-interval", "-0.5"], "serve.monitor_interval_s"),
                                         (["--monitor", ""], "serve.monitor_file")])
def test_bad_values_name_the_field(argv, field):
    with pytest.raises(ConfigError, match=field):
        build_config(parse(["--preset", "tiny", *argv])).validate()
