import copy

import torch

from mmscale.model import MultimodalModel
from mmscale.train.master_weights import MasterWeightAdamW
from mmscale.train.optim import build_optimizer
from mmscale.train.step import TrainStep
from mmscale.train.synthetic import synthetic_batch
from tests.model.conftest import tiny_model_config


def bf16_model():
    torch.manual_seed(0)
    return MultimodalModel(tiny_model_config(itm_weight=0.0)).to(torch.bfloat16)


def master_optimizer(model, lr=1e-3, weight_decay=0.05):
    return MasterWeightAdamW(model, lambda m: build_optimizer(m, lr, weight_decay))


def test_copies_are_fp32_and_groups_follow_the_model_rule():
    model = bf16_model()
    opt = master_optimizer(model)
    assert all(m.dtype == torch.float32 for m in opt.masters)
    assert all(p.dtype == torch.bfloat16 for p in opt.params)
    reference = build_optimizer(model, 1e-3, 0.05)
    # the same split into decayed matrices and undecayed vectors, position by position
    assert [len(g["params"]) for g in opt.param_groups] == [len(g["params"]) for g in reference.param_groups]
    for ours, theirs in zip(opt.param_groups, reference.param_groups):
        assert ours["weight_decay"] == theirs["weight_decay"]
        assert [m.shape for m in ours["params"]] == [p.shape for p in theirs["params"]]


def test_step_updates_the_copies_then_the_bf16_weights():
    model = bf16_model()
    opt = master_optimizer(model)
    before = [m.clone() for m in opt.masters]
    step = TrainStep(model, opt, precision="fp32", grad_clip=1.0)
    out = step(*synthetic_batch(model.cfg, 4))
    assert torch.isfinite(out["grad_norm"])
    moved = sum(not torch.equal(a, b) for a, b in zip(before, opt.masters))
    assert moved > len(before) // 2
    for param, master in zip(opt.params, opt.masters):  # weights = the copies rounded to bf16
        assert torch.equal(param, master.to(torch.bfloat16))
    assert all(p.grad is None for p in opt.params)


def test_updates_too_small_for_bf16_accumulate_in_the_copies():
    """The reason for the copies: an update below half a bf16 step is lost on a bf16 weight."""
    weight = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    module = torch.nn.Module()
    module.weight = weight
    opt = MasterWeightAdamW(module, lambda m: torch.optim.SGD(m.parameters(), lr=1e-3))
    for _ in range(10):
        weight.grad = torch.ones_like(weight)  # each update 1e-3, bf16 resolves 2**-7 near 1.0
        opt.step()
        opt.zero_grad()
    torch.testing.assert_close(opt.masters[0], torch.full((4,), 0.99), rtol=0, atol=1e-6)
    assert torch.equal(weight.detach(), torch.full((4,), 0.99).to(torch.bfloat16))
    plain = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    sgd = torch.optim.SGD([plain], lr=1e-3)
    for _ in range(10):
        plain.grad = torch.ones_like(plain)
        sgd.step()
    assert torch.equal(plain.detach(), torch.ones(4, dtype=torch.bfloat16))  # every update rounded away


def test_loss_of_the_bf16_model_is_close_to_fp32():
    torch.manual_seed(0)
    fp32 = MultimodalModel(tiny_model_config(itm_weight=0.0))
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    batch = synthetic_batch(fp32.cfg, 8, pad_frac=0.25)
    with torch.no_grad():
        a, b = fp32(*batch)["loss"], bf16(*batch)["loss"]
    assert b.dtype == torch.float32  # the losses' softmax runs in fp32
    torch.testing.assert_close(b, a, rtol=3e-2, atol=0)


def test_master_state_round_trip_restores_copies_and_weights():
    model = bf16_model()
    opt = master_optimizer(model)
    TrainStep(model, opt, precision="fp32")(*synthetic_batch(model.cfg, 4))
    saved_model, saved_opt = copy.deepcopy(opt.master_state(model)), copy.deepcopy(opt.state_dict())
    assert saved_model["itm_head.weight"].dtype == torch.float32  # the copy, not the bf16 weight
    twin = bf16_model()
    twin.load_state_dict(saved_model)  # what a resume does first: the weights, rounded to bf16
    twin_opt = master_optimizer(twin)
    twin_opt.load_state_dict(saved_opt)
    twin_opt.load_master_state(twin, saved_model)
    for a, b in zip(opt.masters, twin_opt.masters):
        assert torch.equal(a, b)
    for a, b in zip(opt.params, twin_opt.params):
        assert torch.equal(a, b)


def test_a_weight_without_gradient_is_left_alone_as_plain_adamw_leaves_it():
    model = bf16_model()
    opt = master_optimizer(model, weight_decay=0.5)
    untouched, trained = model.itm_head.weight.detach().clone(), model.image_head.weight.detach().clone()
    # ITC only (itm_weight=0): the ITM head gets no gradient, so decay must not shrink it
    TrainStep(model, opt, precision="fp32", grad_clip=1.0)(*synthetic_batch(model.cfg, 4))
    assert torch.equal(model.itm_head.weight, untouched)
    assert not torch.equal(model.image_head.weight, trained)  # while the step did move the others
