"""train.compile_tuning: Inductor's coordinate-descent tuning is on while the run compiles (the
whole run), off again after it, and refused without torch.compile."""

import pytest
import torch._inductor.config as inductor_config

from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.train import TrainJob
from mmscale.train import loop
from mmscale.train.compile_tuning import compile_tuning


def test_the_context_sets_and_restores_inductor_settings():
    before = inductor_config.coordinate_descent_tuning
    with compile_tuning(True):
        assert inductor_config.coordinate_descent_tuning is True
    assert inductor_config.coordinate_descent_tuning == before
    with compile_tuning(False):
        assert inductor_config.coordinate_descent_tuning == before


def test_a_training_run_compiles_inside_the_tuning(monkeypatch, tmp_path):
    seen, before = [], inductor_config.coordinate_descent_tuning
    monkeypatch.setattr(loop, "_train", lambda *a, **k: seen.append(inductor_config.coordinate_descent_tuning))
    for tuning in ("true", "false"):
        job = load_config(TrainJob, preset="tiny", overrides=["train.compile=true", f"train.compile_tuning={tuning}",
                                                               "train.device=cpu", "train.monitor_interval_s=0",
                                                               f"train.out_dir={tmp_path}"])
        loop.train(job)
    assert seen == [True, before]
    assert inductor_config.coordinate_descent_tuning == before  # restored after the run


def test_tuning_without_compile_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="train.compile_tuning"):
        load_config(TrainJob, preset="tiny", overrides=["train.compile=false", "train.compile_tuning=true"])


def test_a_run_without_mix_order_reduction_compiles_with_it_off(monkeypatch, tmp_path):
    import torch._inductor.config as config

    seen, before = [], config.triton.mix_order_reduction
    monkeypatch.setattr(loop, "_train", lambda *a, **k: seen.append(
        (config.triton.mix_order_reduction, config.coordinate_descent_tuning)))
    job = load_config(TrainJob, preset="tiny", overrides=[
        "train.compile=true", "train.compile_mix_order_reduction=false", "train.device=cpu",
        "train.monitor_interval_s=0", f"train.out_dir={tmp_path}"])
    loop.train(job)
    assert seen == [(False, inductor_config.coordinate_descent_tuning)]  # tuning left as it was
    assert config.triton.mix_order_reduction == before
    with pytest.raises(ConfigError, match="train.compile_mix_order_reduction"):
        load_config(TrainJob, preset="tiny", overrides=["train.compile=false",
                                                        "train.compile_mix_order_reduction=false"])
