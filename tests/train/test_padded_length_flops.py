"""Batches padded to their longest caption (data.pad_to_longest, data.pad_multiple): each step's
FLOPs follow its own text length, scaled from the one counted step by the analytic formula."""

import dataclasses

import pytest

from mmscale.config.load import load_config
from mmscale.model.config import ModelConfig
from mmscale.train import TrainJob, train
from mmscale.train.flops import scale_to_text_length
from mmscale.train.flops_analytic import train_step_flops
from tests.train.conftest import TINY_OVERRIDES


def test_scaling_follows_the_formulas_ratio():
    cfg = ModelConfig(image_encoder="vit_base_patch16_224", text_encoder="bert-base", max_text_len=128)
    at = {n: train_step_flops(dataclasses.replace(cfg, max_text_len=n), 128).total_with_recompute for n in (32, 128)}
    assert scale_to_text_length(10**12, 128, 32, cfg, 128) == round(10**12 * at[32] / at[128])
    assert at[32] < 0.75 * at[128]  # the base text encoder is a large share of the step
    assert scale_to_text_length(10**12, 128, 128, cfg, 128) == 10**12
    unknown = dataclasses.replace(cfg, image_encoder="resnet18")  # no formula: the count as it was
    assert scale_to_text_length(10**12, 128, 32, unknown, 128) == 10**12


@pytest.mark.slow
def test_a_run_padded_to_its_captions_counts_fewer_flops(tiny_dataset, tmp_path):
    results = {}
    for name, padding in (("fixed", []), ("bucketed", ["data.pad_to_longest=true", "data.pad_multiple=4"])):
        job = load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + padding + [
            f"data.path={tiny_dataset}", f"train.out_dir={tmp_path / name}", "train.steps=3",
            "train.eval_samples=1"])
        results[name] = train(job, monitor_interval_s=0)
    fixed, bucketed = results["fixed"], results["bucketed"]
    # captions "a <colour> square on the <side>": 8 tokens with [CLS]/[SEP], padded to 8 of 16
    cfg = load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES).model
    at = {n: train_step_flops(dataclasses.replace(cfg, max_text_len=n), 8).total_with_recompute for n in (8, 16)}
    assert bucketed.flops_per_step == pytest.approx(fixed.flops_per_step * at[8] / at[16], rel=0.01)
