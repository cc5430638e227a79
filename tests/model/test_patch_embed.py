"""The patch embedding as a matmul is the convolution: same output, gradients and parameters."""

import copy

import pytest
import torch
from torch import nn

from mmscale.errors import ConfigError
from mmscale.model import MultimodalModel
from mmscale.model.patch_embed import PatchMatmul, is_patch_conv, use_patch_matmul
from mmscale.train.synthetic import synthetic_batch
from tests.model.conftest import tiny_model_config


@pytest.mark.parametrize("size", [(32, 48), (35, 50)], ids=["divisible", "edges_dropped"])
def test_output_and_gradients_are_the_convolutions(size):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 24, kernel_size=8, stride=8)
    matmul = PatchMatmul(copy.deepcopy(conv))
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    conv.double(), matmul.double()
    want, got = conv(x), matmul(x)
    assert got.shape == want.shape == (2, 24, size[0] // 8, size[1] // 8)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(want)
    want.backward(grad)
    got.backward(grad)
    torch.testing.assert_close(matmul.weight.grad, conv.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(matmul.bias.grad, conv.bias.grad, rtol=1e-12, atol=1e-12)


def test_only_patch_convolutions_qualify():
    assert is_patch_conv(nn.Conv2d(3, 8, 16, stride=16))
    assert not is_patch_conv(nn.Conv2d(3, 8, 3, stride=1, padding=1))  # overlapping windows
    assert not is_patch_conv(nn.Conv2d(3, 8, 4, stride=4, padding=1))
    assert not is_patch_conv(nn.Conv2d(4, 8, 4, stride=4, groups=2))
    with pytest.raises(ValueError, match="not a patch convolution"):
        PatchMatmul(nn.Conv2d(3, 8, 3, stride=2))


def test_the_model_computes_the_same_and_keeps_its_state_dict_keys():
    torch.manual_seed(0)
    conv_model = MultimodalModel(tiny_model_config())
    torch.manual_seed(0)
    matmul_model = MultimodalModel(tiny_model_config(patch_embed="matmul"))
    assert sum(isinstance(m, PatchMatmul) for m in matmul_model.modules()) == 1
    assert not any(isinstance(m, nn.Conv2d) and is_patch_conv(m) for m in matmul_model.modules())
    assert conv_model.state_dict().keys() == matmul_model.state_dict().keys()
    matmul_model.load_state_dict(conv_model.state_dict())
    pixels, ids, mask = synthetic_batch(conv_model.cfg, 3)
    conv_model.eval(), matmul_model.eval()
    with torch.no_grad():
        want = conv_model.image_encoder(pixels)
        got = matmul_model.image_encoder(pixels)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_an_encoder_without_a_patch_convolution_is_refused_by_field(monkeypatch):
    """(Every timm model that takes ``img_size`` has a patch convolution, so the search is
    made to find none.)"""
    import mmscale.model.encoders as encoders

    monkeypatch.setattr(encoders, "use_patch_matmul", lambda module: 0)
    with pytest.raises(ConfigError, match="no patch convolution") as err:
        MultimodalModel(tiny_model_config(patch_embed="matmul"))
    assert err.value.field == "model.patch_embed"


def test_use_patch_matmul_counts_what_it_replaced():
    module = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.Sequential(nn.Conv2d(8, 8, 2, stride=2)),
                           nn.Conv2d(8, 8, 3, padding=1))
    assert use_patch_matmul(module) == 2
    assert isinstance(module[0], PatchMatmul) and isinstance(module[1][0], PatchMatmul)
    assert isinstance(module[2], nn.Conv2d)
