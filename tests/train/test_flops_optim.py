import math

import pytest
import torch

from mmscale.train.flops import count_train_flops, mfu, peak_tflops
from mmscale.train.optim import build_optimizer, param_groups, warmup_cosine


def test_mfu_is_achieved_over_peak():
    # 1e12 FLOPs per step, 10 steps in 1 s = 10 TFLOP/s on a 100 TFLOP/s device -> 10 %
    assert mfu(1e12, 10, 1.0, 100.0) == pytest.approx(0.10)
    assert mfu(1e12, 10, 1.0, None) is None


def test_peak_override_and_unknown_cpu():
    assert peak_tflops(torch.device("cpu")) is None
    assert peak_tflops(torch.device("cpu"), override=780.0) == 780.0


def test_flop_count_matches_the_matmul_formula():
    # Linear 64->32 on batch 8: forward 2*8*64*32; backward twice that (grad input + grad weight)
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 32, bias=False)

        def forward(self, x, ids, mask):
            return {"loss": self.lin(x).sum()}

    model = Tiny()
    x = torch.randn(8, 64, requires_grad=True)
    flops = count_train_flops(model, x, None, None)
    assert flops == 3 * 2 * 8 * 64 * 32
    assert model.lin.weight.grad is None  # the count leaves no gradients behind


def test_flop_count_does_not_move_the_rng():
    class Noisy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, x, ids, mask):
            return {"loss": (self.w * torch.rand(3)).sum()}

    torch.manual_seed(0)
    count_train_flops(Noisy(), torch.zeros(1), None, None)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def test_warmup_then_cosine_to_floor():
    assert warmup_cosine(0, 10, 110, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 110, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(110, 10, 110, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 10, 110, 0.1) == pytest.approx(0.1)


def test_no_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(model, 0.05)
    assert len(decay["params"]) == 1 and len(no_decay["params"]) == 3
    assert build_optimizer(model, 1e-3, 0.05).param_groups[1]["weight_decay"] == 0.0


def test_cpu_attention_is_counted_like_the_gpu_kernels():
    import torch.nn.functional as F

    class Attend(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, q, ids, mask):
            return {"loss": F.scaled_dot_product_attention(q * self.w, q, q).sum()}

    q = torch.randn(2, 4, 16, 8)  # (B, heads, N, d)
    forward = 2 * 2 * 2 * 4 * 16 * 16 * 8  # QK^T and AV
    # backward: torch's SDPA formula counts 2.5x the forward (dQ, dK, dV and the recomputed scores)
    assert count_train_flops(Attend(), q, None, None) == forward + int(2.5 * forward)
