"""The flat-buffer update does what the eager bf16-weights update does, step for step."""

import pytest
import torch

from mmscale.errors import ConfigError
from mmscale.model import MultimodalModel
from mmscale.train.config import TrainConfig
from mmscale.train.distributed import DistEnv
from mmscale.train.flat_update import ALIGN, FlatMasterAdamW, flat_adamw
from mmscale.train.master_weights import MasterWeightAdamW
from mmscale.train.optim import build_optimizer, build_scheduler, build_train_optimizer
from mmscale.train.runtime import resolve_runtime
from mmscale.train.step import TrainStep
from mmscale.train.synthetic import synthetic_batch
from tests.model.conftest import tiny_model_config


def _small():
    """Matrices (decayed) and vectors (not), sizes that are not multiples of the slot alignment."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(16, 33), torch.nn.LayerNorm(33), torch.nn.Linear(33, 7))
    return module.to(torch.bfloat16)


def _build(capturable: bool):
    return lambda m: build_optimizer(m, 1e-2, 0.05, capturable=capturable)


def _eager_update(optimizer: MasterWeightAdamW, clip: float):
    """What ``TrainStep`` does with the eager bf16-weights update: gather, clip, step."""
    optimizer.gather_grads()
    norm = torch.nn.utils.clip_grad_norm_(optimizer.masters, clip) if clip else None
    optimizer.step()
    return norm


@pytest.mark.parametrize("compile_update", [False, True], ids=["eager_pass", "compiled_pass"])
@pytest.mark.parametrize("clip", [0.5, 0.0], ids=["clipped", "unclipped"])
def test_flat_update_matches_the_eager_one(clip, compile_update):
    """The same bf16 gradients into both, 4 steps under a warmup + cosine schedule: the same
    norms, fp32 copies, moments and step counts, and bf16 weights that are the copies rounded.
    The gradients' norm is about 10, so clipping to 0.5 scales every step."""
    if compile_update and clip == 0.0:
        pytest.skip("the compiled pass is checked once, clipped (Inductor's CPU compile takes a while)")
    eager_model, flat_model = _small(), _small()
    eager = MasterWeightAdamW(eager_model, _build(capturable=False))
    flat = FlatMasterAdamW(flat_model, _build(capturable=True), compile_update=compile_update)
    schedulers = [build_scheduler(eager, 2, 6, 0.1), build_scheduler(flat, 2, 6, 0.1)]
    generator = torch.Generator().manual_seed(1)
    for _ in range(4):
        for a, b in zip(eager_model.parameters(), flat_model.parameters()):
            a.grad = torch.randn(a.shape, generator=generator).to(a.dtype)
            b.grad = a.grad.clone()
        eager_norm = _eager_update(eager, clip)
        flat_norm = flat.clip_and_step(clip)
        if clip:
            assert float(eager_norm) > 5 * clip
            assert float(flat_norm) == pytest.approx(float(eager_norm), rel=1e-5)
        else:
            assert flat_norm is None
        for optimizer, scheduler in zip((eager, flat), schedulers):
            optimizer.zero_grad()
            scheduler.step()
    for a, b in zip(eager.masters, flat.masters):
        assert not torch.equal(b, b.new_zeros(b.shape))
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(flat.state[b]["exp_avg"], eager.state[a]["exp_avg"], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(flat.state[b]["exp_avg_sq"], eager.state[a]["exp_avg_sq"], rtol=1e-5, atol=1e-7)
        assert float(flat.state[b]["step"]) == float(eager.state[a]["step"]) == 4.0
    for param, master in zip(flat.params, flat.masters):  # the weights are the copies rounded
        assert torch.equal(param, master.to(torch.bfloat16))
    assert all(p.grad is None for p in flat_model.parameters())


def test_weights_copies_and_moments_are_views_of_aligned_flat_buffers():
    model = _small()
    flat = FlatMasterAdamW(model, _build(capturable=True))
    for param, master in zip(flat.params, flat.masters):
        assert param.untyped_storage().data_ptr() == flat.weight_flat.untyped_storage().data_ptr()
        assert master.untyped_storage().data_ptr() == flat.master_flat.untyped_storage().data_ptr()
        assert param.storage_offset() % ALIGN == 0 and param.storage_offset() == master.storage_offset()
        state = flat.state[master]
        assert state["exp_avg"].storage_offset() == master.storage_offset()
        assert state["exp_avg_sq"].untyped_storage().data_ptr() == flat.exp_avg_sq_flat.untyped_storage().data_ptr()
    # each parameter group is one contiguous span (one pointwise pass each)
    starts = [min(m.storage_offset() for m in g["params"]) for g in flat.param_groups]
    assert [start for start, _ in flat.group_spans] == starts
    assert flat.group_spans[0][1] == flat.group_spans[1][0]
    # the model still computes with its own weights: a forward in place of the flattened ones
    out = model(torch.ones(2, 16, dtype=torch.bfloat16))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_gaps_between_slots_stay_zero():
    """The alignment gaps are never a weight's: the pass keeps them zero, and the norm is the
    gradients' own."""
    model = _small()
    flat = FlatMasterAdamW(model, _build(capturable=True))
    for param in model.parameters():
        param.grad = torch.full_like(param, 2.0)
    norm = flat.clip_and_step(1e9)
    count = sum(p.numel() for p in model.parameters())
    assert float(norm) == pytest.approx(2.0 * count ** 0.5, rel=1e-6)
    assert flat.grad_flat.numel() > count  # the gaps exist...
    used = torch.zeros(flat.grad_flat.numel(), dtype=torch.bool)
    for param in model.parameters():
        used[param.storage_offset():param.storage_offset() + param.numel()] = True
    assert torch.count_nonzero(flat.master_flat[~used]) == 0  # ...and stay zero
    assert torch.count_nonzero(flat.exp_avg_flat[~used]) == 0


def test_a_weight_without_a_gradient_is_refused_by_name():
    model = _small()
    flat = FlatMasterAdamW(model, _build(capturable=True))
    for name, param in model.named_parameters():
        param.grad = None if name == "1.bias" else torch.ones_like(param)
    with pytest.raises(RuntimeError, match=r"1\.bias .*no gradient"):
        flat.clip_and_step(1.0)


def test_state_round_trips_with_the_eager_update():
    """AdamW's state keeps its usual form: the flat run's state loads into an eager
    ``MasterWeightAdamW``, and back into a fresh flat one, whose moments are again views."""
    model = _small()
    flat = FlatMasterAdamW(model, _build(capturable=True))
    for _ in range(2):
        for param in model.parameters():
            param.grad = torch.randn_like(param)
        flat.clip_and_step(1.0)
    saved = flat.state_dict()
    eager = MasterWeightAdamW(_small(), _build(capturable=True))
    eager.load_state_dict(saved)
    assert float(eager.state_dict()["state"][0]["step"]) == 2.0
    again = FlatMasterAdamW(_small(), _build(capturable=True))
    again.load_state_dict(eager.state_dict())
    for a, b in zip(flat.masters, again.masters):
        torch.testing.assert_close(again.state[b]["exp_avg"], flat.state[a]["exp_avg"], rtol=0, atol=0)
        assert again.state[b]["exp_avg"].untyped_storage().data_ptr() == again.exp_avg_flat.untyped_storage().data_ptr()
    assert torch.equal(again.exp_avg_sq_flat, flat.exp_avg_sq_flat)


def test_train_step_runs_it_on_the_tiny_model():
    """Through ``TrainStep``: the first step from the same weights and batch gives the eager
    update's loss, norm and fp32 copies (the tiny model's every weight gets a gradient)."""
    results = []
    for cls, capturable in ((MasterWeightAdamW, False), (FlatMasterAdamW, True)):
        torch.manual_seed(0)
        model = MultimodalModel(tiny_model_config()).to(torch.bfloat16)
        optimizer = cls(model, _build(capturable=capturable))
        torch.manual_seed(100)
        out = TrainStep(model, optimizer, precision="fp32", grad_clip=0.05)(*synthetic_batch(model.cfg, 4))
        results.append((out, optimizer))
    (eager_out, eager), (flat_out, flat) = results
    assert float(eager_out["grad_norm"]) > 0.05
    assert float(flat_out["grad_norm"]) == pytest.approx(float(eager_out["grad_norm"]), rel=1e-4)
    for a, b in zip(eager.masters, flat.masters):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_flat_adamw_is_torch_adamw_on_one_tensor():
    """The pointwise pass alone against ``torch.optim.AdamW`` on an fp32 tensor, 3 steps."""
    torch.manual_seed(0)
    weight = torch.randn(100)
    reference = torch.nn.Parameter(weight.clone())
    adamw = torch.optim.AdamW([reference], lr=1e-2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05)
    master, m, v = weight.clone(), torch.zeros(100), torch.zeros(100)
    bf16 = torch.zeros(100, dtype=torch.bfloat16)
    for step in range(1, 4):
        grad = torch.randn(100).to(torch.bfloat16)
        reference.grad = grad.float() * 0.5
        adamw.step()
        flat_adamw(master, m, v, grad, bf16, torch.tensor(float(step)), torch.tensor(1e-2), torch.tensor(0.5),
                   0.05, 0.9, 0.98, 1e-6)
    torch.testing.assert_close(master, reference.detach(), rtol=1e-6, atol=1e-7)
    assert torch.equal(bf16, master.to(torch.bfloat16))


def test_the_runtime_builds_it_and_refuses_what_it_is_not_for():
    cfg = TrainConfig(flat_update=True, weights="bf16", precision="bf16", device="cpu")
    runtime = resolve_runtime(cfg)
    optimizer = build_train_optimizer(_small(), cfg, runtime)
    assert isinstance(optimizer, FlatMasterAdamW) and optimizer.grad_buffers is None
    assert all(isinstance(g["lr"], torch.Tensor) for g in optimizer.param_groups)
    with pytest.raises(ConfigError, match="weights=fp32") as err:
        resolve_runtime(TrainConfig(flat_update=True, device="cpu"))  # fp32 compute on CPU: fp32 weights
    assert err.value.field == "train.flat_update"


def test_step_hooks_run_around_it():
    """``bench pipeline`` marks its optimizer stage with step hooks; the inner AdamW never steps."""
    model = _small()
    flat = FlatMasterAdamW(model, _build(capturable=True))
    calls = []
    pre = flat.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    flat.register_step_post_hook(lambda opt, args, kwargs: calls.append("post"))
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    flat.step()
    pre.remove()
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    flat.step()
    assert calls == ["pre", "post", "post"]


def test_training_with_it_checkpoints_and_resumes_to_the_same_losses(tiny_dataset, tmp_path):
    """Through ``mmscale train``: bf16 weights with the flat update, 3 steps, then resumed to 6,
    give the losses of 6 uninterrupted steps (the moments, step counts and fp32 copies survive
    the checkpoint), and the first steps' losses match the eager update's."""
    from tests.train.test_bf16_weights import resumed_and_whole_and_eager

    torch.set_num_threads(1)
    want, got, eager = resumed_and_whole_and_eager(tiny_dataset, tmp_path, "train.flat_update=true")
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), f"step {step}"
    assert eager[1] == pytest.approx(want[1], rel=1e-6)  # the same weights and batch
    for step in (2, 3):  # after an update, a few bf16 weights may round the other way
        assert eager[step] == pytest.approx(want[step], rel=1e-3), f"step {step}"


def test_more_than_one_process_is_refused_by_field():
    """Under torchrun the weights are DDP's; the flat update re-seats their storage, so asking for
    it there is refused, naming the field, and ``auto`` leaves it off."""
    two = DistEnv(rank=0, local_rank=0, world_size=2)
    cfg = TrainConfig(flat_update=True, weights="bf16", precision="bf16", device="cpu")
    with pytest.raises(ConfigError, match="world_size=2") as err:
        resolve_runtime(cfg, two)
    assert err.value.field == "train.flat_update"
    assert not resolve_runtime(TrainConfig(weights="bf16", precision="bf16", device="cpu"), two).flat_update
