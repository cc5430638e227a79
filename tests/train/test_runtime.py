"""``resolve_runtime``: what each ``auto`` switch becomes on CPU, on one CUDA GPU and under torchrun,
and the refusals (naming the field) when a switch set to true cannot work."""

import pytest
import torch

from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.train.config import TrainConfig, TrainJob
from mmscale.train.distributed import DistEnv
from mmscale.train.runtime import resolve_runtime


@pytest.fixture
def fake_cuda(monkeypatch):
    """A host that reports a CUDA device: only the resolution is tested, nothing runs on it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_cpu_defaults_are_the_plain_fp32_eager_step():
    runtime = resolve_runtime(TrainConfig(device="cpu"))
    assert (runtime.precision.name, runtime.precision.weights) == ("fp32", "fp32")
    assert not runtime.compile and not runtime.step_graph and not runtime.flat_update
    assert runtime.describe() == "cpu x1, fp32, eager"


def test_one_cuda_gpu_gets_every_measured_win(fake_cuda):
    runtime = resolve_runtime(TrainConfig())
    assert runtime.device.type == "cuda"
    assert (runtime.precision.name, runtime.precision.weights) == ("bf16", "bf16")
    assert runtime.compile and runtime.step_graph and runtime.flat_update
    assert runtime.strategy == "none"


def test_the_base_preset_resolves_to_the_documented_settings(fake_cuda):
    job = load_config(TrainJob, preset="base")
    runtime = resolve_runtime(job.train)
    assert runtime.as_dict() == {"device": "cuda:0", "world_size": 1, "precision": "bf16", "weights": "bf16",
                                 "compile": True, "step_graph": True, "flat_update": True, "strategy": "none"}
    assert (job.model.patch_embed, job.model.gelu) == ("matmul", "erf_poly")


def test_torchrun_keeps_bf16_weights_but_not_the_one_process_switches(fake_cuda):
    runtime = resolve_runtime(TrainConfig(), DistEnv(rank=0, local_rank=0, world_size=2))
    assert runtime.strategy == "ddp" and runtime.precision.weights == "bf16" and runtime.compile
    assert not runtime.step_graph and not runtime.flat_update
    fsdp = resolve_runtime(TrainConfig(parallel="fsdp"), DistEnv(rank=0, local_rank=0, world_size=2))
    assert fsdp.strategy == "fsdp" and fsdp.precision.weights == "fp32"  # FSDP2 keeps its own fp32 weights


def test_accumulation_and_fp16_turn_off_what_they_cannot_run_with(fake_cuda):
    accumulated = resolve_runtime(TrainConfig(grad_accum=2, batch_size=64))
    assert accumulated.precision.weights == "fp32" and not accumulated.step_graph and not accumulated.flat_update
    fp16 = resolve_runtime(TrainConfig(precision="fp16"))
    assert fp16.precision.weights == "fp32" and not fp16.step_graph


@pytest.mark.parametrize("overrides, field, words", [
    ({"step_graph": True}, "train.step_graph", "device=cpu"),
    ({"flat_update": True}, "train.flat_update", "weights=fp32"),
    ({"weights": "bf16", "precision": "fp32"}, "train.weights", "precision=fp32"),
])
def test_a_switch_set_true_that_cannot_work_on_cpu_is_refused(overrides, field, words):
    with pytest.raises(ConfigError, match=words) as err:
        resolve_runtime(TrainConfig(device="cpu", **overrides))
    assert err.value.field == field


def test_switches_are_reachable_for_an_ab_from_overrides(fake_cuda):
    job = load_config(TrainJob, preset="base", overrides=["train.step_graph=false", "train.weights=fp32",
                                                          "train.compile=auto"])
    runtime = resolve_runtime(job.train)
    assert not runtime.step_graph and runtime.precision.weights == "fp32" and not runtime.flat_update
    assert runtime.compile
