import json

from mmscale.config.load import load_config
from mmscale.train import TrainJob, train
from tests.train.conftest import TINY_OVERRIDES


def test_train_runs_logs_evaluates_and_checkpoints(tiny_dataset, tmp_path):
    job = load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={tiny_dataset}", f"train.out_dir={tmp_path}", "train.steps=4", "train.grad_accum=2",
    ])
    result = train(job)
    assert result.steps == 4 and result.samples == 32
    assert result.loss is not None and result.loss > 0 and result.flops_per_step > 0
    assert set(result.eval) >= {"i2t_r1", "t2i_r10", "chance_r1"}
    assert result.eval["samples"] == 16
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    steps = [r["step"] for r in rows if "loss/total" in r]
    assert steps == [1, 2, 3, 4]
    assert all(r["throughput/samples_per_s"] > 0 and r["time/compute_ms"] > 0 for r in rows if "loss/total" in r)
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "result.json").is_file()
    json.dumps(result.as_dict())  # flat and serializable


def test_time_limit_stops_early_and_still_evaluates(tiny_dataset, tmp_path):
    job = load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={tiny_dataset}", f"train.out_dir={tmp_path}", "train.steps=500",
        "train.time_limit_s=0.001", "train.log_every=100",
    ])
    result = train(job)
    assert result.steps == 1  # the clock is checked after every step of a single process
    assert result.eval["samples"] == 16
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in rows if "loss/total" in r] == [1]  # the stopping step is logged


def test_fp8_training_runs_through_the_loop_and_resumes_from_its_checkpoint(tiny_dataset, tmp_path):
    import pytest

    pytest.importorskip("torchao")  # a test dependency (pyproject)
    base = TINY_OVERRIDES + [f"data.path={tiny_dataset}", f"train.out_dir={tmp_path}",
                             "train.fp8=tensorwise", "train.fp8_layers=all", "train.precision=bf16"]
    result = train(load_config(TrainJob, preset="tiny", overrides=base + ["train.steps=2"]))
    assert result.steps == 2 and result.loss > 0
    resumed = train(load_config(TrainJob, preset="tiny", overrides=base + ["train.steps=3", "train.resume=true"]))
    assert resumed.steps == 1  # steps run by this process: 3 - the 2 restored
