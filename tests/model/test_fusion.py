"""Contract tests over every fusion entry, equivalence of ``fused`` with ``reference``, padding."""

import pytest
import torch

from mmscale.model.config import ModelConfig
from mmscale.model.fusion import FUSIONS

IMAGE_DIM, TEXT_DIM, HIDDEN = 24, 20, 32


def config(fusion: str, layers: int = 0) -> ModelConfig:
    return ModelConfig(fusion=fusion, fusion_layers=layers, hidden_dim=HIDDEN, num_heads=8)


def inputs(batch=3, n_img=5, n_txt=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, n_img, IMAGE_DIM, generator=gen)
    text = torch.randn(batch, n_txt, TEXT_DIM, generator=gen)
    return image, text, torch.ones(batch, n_txt, dtype=torch.long)


VARIANTS = [(name, 0) for name in FUSIONS] + [("fused", 2)]


@pytest.mark.parametrize("name,layers", VARIANTS)
def test_every_fusion_keeps_the_contract(name, layers):
    fusion = FUSIONS[name](IMAGE_DIM, TEXT_DIM, config(name, layers))
    image, text, mask = inputs()
    out = fusion(image, text, mask)
    assert out.shape == (3, 5, HIDDEN)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in fusion.parameters())


def test_fused_equals_reference_on_unpadded_input_with_shared_weights():
    torch.manual_seed(0)
    reference = FUSIONS["reference"](IMAGE_DIM, TEXT_DIM, config("reference"))
    fused = FUSIONS["fused"](IMAGE_DIM, TEXT_DIM, config("fused"))
    fused.load_state_dict(reference.state_dict())  # same parameter names, strict
    image, text, mask = inputs()
    want, got = reference(image, text, mask), fused(image, text, mask)
    rel_err = ((got - want).norm() / want.norm()).item()
    assert rel_err < 1e-5
    # and they are not trivially equal: different weights give a different answer
    torch.nn.init.normal_(fused.image_proj.weight)
    assert ((fused(image, text, mask) - want).norm() / want.norm()).item() > 1e-2


@pytest.mark.parametrize("layers", [0, 2])
def test_padding_does_not_change_fused_output(layers):
    fusion = FUSIONS["fused"](IMAGE_DIM, TEXT_DIM, config("fused", layers)).eval()
    image, text, mask = inputs(n_txt=4)
    padded_text = torch.cat([text, torch.randn(3, 6, TEXT_DIM)], dim=1)  # 6 junk pad positions
    padded_mask = torch.cat([mask, torch.zeros(3, 6, dtype=torch.long)], dim=1)
    short, long = fusion(image, text, mask), fusion(image, padded_text, padded_mask)
    torch.testing.assert_close(long, short, rtol=1e-5, atol=1e-6)


def test_reference_output_changes_with_padding_which_is_the_bug_we_keep_in_the_baseline():
    fusion = FUSIONS["reference"](IMAGE_DIM, TEXT_DIM, config("reference")).eval()
    image, text, mask = inputs(n_txt=4)
    padded_text = torch.cat([text, torch.randn(3, 6, TEXT_DIM)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(3, 6, dtype=torch.long)], dim=1)
    diff = (fusion(image, padded_text, padded_mask) - fusion(image, text, mask)).abs().max()
    assert diff > 1e-3


def test_all_padding_row_stays_finite():
    fusion = FUSIONS["fused"](IMAGE_DIM, TEXT_DIM, config("fused"))
    image, text, mask = inputs()
    mask[1] = 0
    assert torch.isfinite(fusion(image, text, mask)).all()


@pytest.mark.parametrize("name,layers", VARIANTS)
def test_text_index_equals_gathering_the_texts_first(name, layers):
    """ITM's pairs name their text; projecting each text once must change nothing, gradients included."""
    torch.manual_seed(0)
    fusion = FUSIONS[name](IMAGE_DIM, TEXT_DIM, config(name, layers)).eval()
    _, text, mask = inputs(batch=3)
    mask[1, 4:] = 0
    index = torch.tensor([0, 2, 2, 1, 0])  # 5 image rows over 3 texts, two of them used twice
    queries = torch.randn(5, 2, IMAGE_DIM)
    text_a, text_b = text.clone().requires_grad_(), text.clone().requires_grad_()
    indexed = fusion(queries, text_a, mask, index)
    gathered = fusion(queries, text_b[index], mask[index])
    torch.testing.assert_close(indexed, gathered, rtol=1e-5, atol=1e-6)
    indexed.square().sum().backward()
    gathered.square().sum().backward()
    torch.testing.assert_close(text_a.grad, text_b.grad, rtol=1e-5, atol=1e-6)
