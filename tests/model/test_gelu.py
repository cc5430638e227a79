"""The polynomial-erf GELU: the same function as torch's erf GELU, its own backward, the swap."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.model import ModelConfig, MultimodalModel
from mmscale.model.gelu import ErfPolyGELU, gelu_erf_poly, gelu_erf_poly_backward, use_erf_poly_gelu


def test_forward_and_backward_match_exact_gelu_in_fp32():
    x = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    exact, exact_grad = F.gelu(x), torch.ops.aten.gelu_backward(torch.ones_like(x), x)
    ours = gelu_erf_poly(x.float()).double()
    ours_grad = gelu_erf_poly_backward(torch.ones_like(x).float(), x.float()).double()
    assert (ours - exact).abs().max() < 1e-6
    assert (ours_grad - exact_grad).abs().max() < 1e-6


def test_bf16_results_round_to_the_true_value_at_least_as_often_as_torchs():
    torch.manual_seed(0)
    x = (3 * torch.randn(1_000_000)).bfloat16()
    g = torch.randn_like(x)
    truth = F.gelu(x.double()).bfloat16()
    truth_grad = torch.ops.aten.gelu_backward(g.double(), x.double()).bfloat16()
    torch_wrong = (F.gelu(x.float()).bfloat16() != truth).float().mean()
    ours_wrong = (gelu_erf_poly(x) != truth).float().mean()
    torch_grad_wrong = (torch.ops.aten.gelu_backward(g.float(), x.float()).bfloat16() != truth_grad).float().mean()
    ours_grad_wrong = (gelu_erf_poly_backward(g, x) != truth_grad).float().mean()
    assert gelu_erf_poly(x).dtype == gelu_erf_poly_backward(g, x).dtype == torch.bfloat16
    assert ours_wrong <= torch_wrong and ours_grad_wrong <= torch_grad_wrong


def test_eager_calls_keep_torchs_gelu_bit_for_bit():
    x = torch.randn(64, 32)
    assert torch.equal(ErfPolyGELU()(x), F.gelu(x))


def test_compiled_module_runs_the_polynomial_and_its_backward():
    torch.manual_seed(0)
    x = torch.randn(256, 64, dtype=torch.float64).float().requires_grad_()
    grad_out = torch.randn(256, 64)
    seen = []

    def backend(gm, example_inputs):  # records the traced graph, runs it as traced
        seen.append(gm)
        return gm.forward

    y = torch.compile(ErfPolyGELU(), backend=backend, fullgraph=True)(x)
    (dx,) = torch.autograd.grad(y, x, grad_out)
    called = {getattr(node.target, "__name__", str(node.target))  # the Function's bodies included
              for gm in seen for sub in gm.modules() if isinstance(sub, torch.fx.GraphModule)
              for node in sub.graph.nodes if node.op == "call_function"}
    assert "rsqrt" in called and not any("gelu" in name for name in called)  # the polynomial, not torch's
    x_ref = x.detach().requires_grad_()
    (dx_ref,) = torch.autograd.grad(F.gelu(x_ref), x_ref, grad_out)
    torch.testing.assert_close(y, F.gelu(x.detach()), atol=1e-6, rtol=0)
    torch.testing.assert_close(dx, dx_ref, atol=1e-6, rtol=0)


def test_swap_replaces_exact_gelus_only():
    from transformers.activations import GELUActivation, NewGELUActivation

    model = nn.Sequential(nn.GELU(), nn.Sequential(GELUActivation(), nn.GELU(approximate="tanh")),
                          NewGELUActivation(), nn.ReLU())
    assert use_erf_poly_gelu(model) == 2
    assert isinstance(model[0], ErfPolyGELU) and isinstance(model[1][0], ErfPolyGELU)
    assert isinstance(model[1][1], nn.GELU) and isinstance(model[2], NewGELUActivation)


def test_model_option_swaps_both_encoders_and_keeps_the_weights():
    def build(gelu):
        torch.manual_seed(0)
        return MultimodalModel(load_config(ModelConfig, preset="tiny", section="model",
                                           overrides=[f"model.gelu={gelu}"]))

    plain, poly = build("erf"), build("erf_poly")
    exact = [m for m in plain.modules() if isinstance(m, nn.GELU) or type(m).__name__ == "GELUActivation"]
    swapped = [m for m in poly.modules() if isinstance(m, ErfPolyGELU)]
    assert len(swapped) == len(exact) > 0
    assert any(isinstance(m, ErfPolyGELU) for m in poly.image_encoder.modules())
    assert any(isinstance(m, ErfPolyGELU) for m in poly.text_encoder.modules())
    assert plain.state_dict().keys() == poly.state_dict().keys()  # checkpoints load either way


def test_unknown_gelu_names_the_field():
    with pytest.raises(ConfigError, match="model.gelu"):
        load_config(ModelConfig, preset="tiny", section="model", overrides=["model.gelu=tanh"])
