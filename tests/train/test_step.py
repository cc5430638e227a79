import copy

import pytest
import torch

from mmscale.model import MultimodalModel
from mmscale.train.optim import build_optimizer
from mmscale.train.precision import Precision
from mmscale.train.step import TrainStep
from mmscale.train.synthetic import synthetic_batch
from tests.model.conftest import tiny_model_config


def small_model():
    torch.manual_seed(0)
    return MultimodalModel(tiny_model_config(itm_weight=0.0))  # ITC only: no sampling, exact comparison


def test_grad_accumulation_matches_one_big_batch():
    base = small_model()
    twin = copy.deepcopy(base)
    pixels, ids, mask = synthetic_batch(base.cfg, 8, pad_frac=0.25)
    # ITC couples the samples of a batch, so compare two micro-batches of 4 with two
    # separate half-batch losses averaged by hand
    one = TrainStep(base, torch.optim.SGD(base.parameters(), lr=0.1), grad_accum=2)
    one(pixels, ids, mask)
    sgd = torch.optim.SGD(twin.parameters(), lr=0.1)
    for half in (slice(0, 4), slice(4, 8)):
        (twin(pixels[half], ids[half], mask[half])["loss"] / 2).backward()
    sgd.step()
    for (name, a), (_, b) in zip(base.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_step_moves_weights_and_returns_device_losses():
    model = small_model()
    before = model.itm_head.weight.clone(), model.image_head.weight.clone()
    step = TrainStep(model, build_optimizer(model, 1e-3, 0.0), precision="fp32", grad_clip=1.0)
    out = step(*synthetic_batch(model.cfg, 4))
    assert set(out) == {"loss", "loss_itc", "loss_itm", "grad_norm"}
    assert not torch.equal(before[1], model.image_head.weight)


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_low_precision_paths_run_on_cpu(name):
    model = small_model()
    step = TrainStep(model, build_optimizer(model, 1e-3, 0.0), precision=Precision(name, "cpu"))
    assert (step.scaler is not None) == (name == "fp16")
    out = step(*synthetic_batch(model.cfg, 4))
    assert torch.isfinite(out["loss"])


def test_activation_checkpointing_gives_the_same_gradients():
    plain, ckpt = small_model(), small_model()
    batch = synthetic_batch(plain.cfg, 4)
    TrainStep(plain, torch.optim.SGD(plain.parameters(), lr=0.1))(*batch)
    TrainStep(ckpt, torch.optim.SGD(ckpt.parameters(), lr=0.1), checkpointing=True)(*batch)
    assert ckpt.image_encoder.backbone.grad_checkpointing
    bert = ckpt.text_encoder.bert
    assert getattr(bert, "is_activation_checkpointing", None) or bert.is_gradient_checkpointing
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_a_short_batch_still_syncs_on_its_last_micro_batch_and_weighs_by_samples(monkeypatch):
    """Batch 3 with grad_accum=4 splits into 3 chunks of 1: the third must sync (DDP all-reduce)."""
    from mmscale.train import step as step_module

    synced = []
    monkeypatch.setattr(step_module, "grad_sync", lambda model, enabled: synced.append(enabled) or
                        __import__("contextlib").nullcontext())
    model = small_model()
    pixels, ids, mask = synthetic_batch(model.cfg, 3)
    out = TrainStep(model, build_optimizer(model, 1e-3, 0.0), grad_accum=4)(pixels, ids, mask)
    assert synced == [False, False, True]
    assert torch.isfinite(out["loss"])


class ConstantLoss(torch.nn.Module):
    """What a compiled model returns for a batch of one: a loss with no graph behind it."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3))

    def forward(self, pixels, ids, mask):
        return {"loss": torch.zeros(())}


def test_a_micro_batch_with_nothing_to_learn_skips_backward_and_the_update():
    model = ConstantLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pixels, ids, mask = torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2)
    out = TrainStep(model, optimizer)(pixels, ids, mask)
    assert out["loss"].item() == 0.0
    assert torch.equal(model.weight, torch.ones(3)) and model.weight.grad is None


class RecordsInputs(ConstantLoss):
    def forward(self, pixels, ids, mask):
        self.seen = (pixels, ids, mask)
        return {"loss": (self.weight * 0).sum()}


def test_one_micro_batch_reaches_the_model_as_the_callers_tensors():
    """Not views: a dynamic mark (maybe_mark_dynamic) on the caller's batch (the batch sweep's one compile
    per variant) is an attribute of those very tensor objects."""
    model = RecordsInputs()
    batch = torch.zeros(2, 3, 4, 4), torch.zeros(2, 2, dtype=torch.long), torch.ones(2, 2)
    TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1))(*batch)
    assert all(seen is given for seen, given in zip(model.seen, batch))
