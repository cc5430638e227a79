"""``train.trackers``: names checked at load, MLflow or W&B missing stops the run before any work,
TensorBoard missing is one info line, and only the writing rank opens a tracker."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from mmscale.cli import main
from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.train import TrainJob, train
from mmscale.train.metrics import MetricsWriter
from tests.train.conftest import TINY_OVERRIDES


def tiny_job(data, out_dir, *extra):
    return load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={data}", f"train.out_dir={out_dir}", *extra])


def hide(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # find_spec -> None, import -> ImportError


@pytest.mark.parametrize("trackers, reason", [
    ("[comet]", "unknown tracker 'comet' (known: tensorboard, mlflow, wandb)"),
    ("[mlflow, mlflow]", "'mlflow' is listed twice"),
])
def test_a_name_that_is_not_known_names_the_field_and_the_known_ones(trackers, reason):
    with pytest.raises(ConfigError) as err:
        load_config(TrainJob, overrides=[f"train.trackers={trackers}"])
    assert err.value.field == "train.trackers" and err.value.reason == reason


@pytest.mark.parametrize("name", ["mlflow", "wandb"])
def test_mlflow_or_wandb_asked_for_and_missing_stops_the_run_before_any_work(name, tiny_dataset, tmp_path,
                                                                            monkeypatch):
    hide(monkeypatch, name)
    with pytest.raises(ConfigError) as err:
        train(tiny_job(tiny_dataset, tmp_path / "run", f"train.trackers=[tensorboard, {name}]"))
    assert err.value.field == "train.trackers"
    assert err.value.reason == (f"'{name}' needs the '{name}' extra, which is not installed: "
                                f"pip install 'mmscale[{name}]'")
    assert not (tmp_path / "run").exists()  # not even config.json


def test_the_cli_says_which_extra_to_install_in_one_line(tiny_dataset, tmp_path, monkeypatch, capsys):
    hide(monkeypatch, "wandb")
    code = main(["train", "--preset", "tiny", "--no-progress", *TINY_OVERRIDES, f"data.path={tiny_dataset}",
                 f"train.out_dir={tmp_path}", "train.trackers=[wandb]"])
    assert code == 2
    assert capsys.readouterr().err == ("mmscale: error: config field 'train.trackers': 'wandb' needs the 'wandb' "
                                       "extra, which is not installed: pip install 'mmscale[wandb]'\n")


def test_tensorboard_missing_is_an_info_line_and_metrics_jsonl_has_the_row(tmp_path, monkeypatch, caplog):
    hide(monkeypatch, "tensorboard")
    with caplog.at_level(logging.INFO, logger="mmscale.train.trackers"):
        writer = MetricsWriter(tmp_path, ["tensorboard"])
    writer.write({"step": 1, "loss/total": 2.5})
    writer.close()
    assert "no TensorBoard events" in caplog.text and "pip install 'mmscale[tensorboard]'" in caplog.text
    assert [json.loads(line) for line in open(tmp_path / "metrics.jsonl")] == [{"step": 1, "loss/total": 2.5}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_only_the_writing_rank_opens_trackers(tmp_path):
    writer = MetricsWriter(tmp_path, ["tensorboard", "mlflow", "wandb"], config={}, enabled=False)
    writer.write({"step": 1, "loss/total": 2.5})
    writer.close()
    assert writer.trackers == [] and list(tmp_path.iterdir()) == []


def test_no_trackers_is_metrics_jsonl_alone(tmp_path):
    writer = MetricsWriter(tmp_path, [])
    writer.write({"step": 1, "loss/total": 2.5})
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]
