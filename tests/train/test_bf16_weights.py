"""``train.weights=bf16`` through the training command: config checks, checkpoint, resume."""

import json

import pytest
import torch

from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.train import TrainJob, train
from mmscale.train.runtime import resolve_runtime
from tests.train.conftest import TINY_OVERRIDES


def job(data, out_dir, *extra):
    overrides = TINY_OVERRIDES + [f"data.path={data}", f"train.out_dir={out_dir}", "train.weights=bf16", "train.precision=bf16",
                                  "train.eval_samples=4", *extra]
    return load_config(TrainJob, preset="tiny", overrides=overrides)


def losses(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["step"]: r["loss/total"] for r in rows if "loss/total" in r}


def resumed_and_whole_and_eager(data, tmp_path, option: str):
    """Losses by step of three bf16-weights runs with the update ``option`` names (say
    ``train.flat_update=true``): 6 steps whole, 3 then resumed to 6, and 3 with the eager update."""
    flat = ["train.warmup_steps=0", "train.min_lr_ratio=1.0", "train.log_every=1"]
    whole, parted, eager = tmp_path / "whole", tmp_path / "parted", tmp_path / "eager"
    train(job(data, whole, "train.steps=6", option, *flat))
    train(job(data, parted, "train.steps=3", option, *flat))
    train(job(data, parted, "train.steps=6", "train.resume=true", option, *flat))
    train(job(data, eager, "train.steps=3", "train.flat_update=false", *flat))
    return losses(whole / "metrics.jsonl"), losses(parted / "metrics.jsonl"), losses(eager / "metrics.jsonl")


@pytest.mark.parametrize("setting", [["train.precision=fp16"], ["train.precision=fp32"],
                                     ["train.grad_accum=2", "train.batch_size=8"]])
def test_settings_that_cannot_go_with_bf16_weights_name_the_field(tmp_path, setting):
    with pytest.raises(ConfigError) as err:
        resolve_runtime(job(tmp_path, tmp_path / "out", *setting).train)
    assert err.value.field == "train.weights"


def test_training_stores_fp32_copies_and_resumes_to_the_same_losses(tiny_dataset, tmp_path):
    torch.set_num_threads(1)
    full, parted = tmp_path / "full", tmp_path / "parted"
    # the eager update of the fp32 copies; the 3-step run's schedule = the 6-step one's
    flat = ["train.flat_update=false", "train.warmup_steps=0", "train.min_lr_ratio=1.0"]
    result = train(job(tiny_dataset, full, "train.steps=6", *flat))
    assert result.precision == "bf16 (bf16 weights)"
    saved = torch.load(full / "checkpoint.pt", weights_only=True)
    assert saved["model"]["itm_head.weight"].dtype == torch.float32
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    train(job(tiny_dataset, parted, "train.steps=3", *flat))
    train(job(tiny_dataset, parted, "train.steps=6", "train.resume=true", *flat))
    want, got = losses(full / "metrics.jsonl"), losses(parted / "metrics.jsonl")
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), f"step {step}"
