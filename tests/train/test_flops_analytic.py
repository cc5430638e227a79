"""The FLOP formula written out from sizes: hand-checked pieces, published figures, the counter."""

import pytest
import timm
import torch

from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.model import ModelConfig, MultimodalModel
from mmscale.train.flops import count_train_flops
from mmscale.train.flops_analytic import (
    VIT_SIZES,
    attention_flops,
    cross_attention_linear_flops,
    encoder_layer_flops,
    matmul_flops,
    train_step_flops,
)
from mmscale.train.synthetic import synthetic_batch

SMALL = ["model.image_size=32", "model.image_depth=2", "model.max_text_len=16", "model.hidden_dim=64"]


def test_matmul_and_layer_formulas_on_constructed_sizes():
    assert matmul_flops(2, 3, 4) == 48
    n, d = 10, 8
    assert encoder_layer_flops(n, d, 4 * d) == 24 * n * d * d + 4 * n * n * d
    # cross-attention of 5 queries over 7 keys at width 8: Q + out (5x8x8 each), K and V (7x16x8), QK^T and AV
    assert cross_attention_linear_flops(5, 7, 8) == 2 * (5 * 8 * 8 * 2 + 7 * 16 * 8)
    assert attention_flops(5, 7, 8) == 2 * 2 * 5 * 7 * 8


def test_base_preset_matches_published_figures():
    cfg = load_config(ModelConfig, preset="base", section="model")
    step = train_step_flops(cfg, batch=128)
    per = {k: v.forward / 128 for k, v in step.parts.items()}
    vit = per["image_patch_embed"] + per["image_linear"] + per["image_attention"]
    # ViT-B/16 at 224 px: 17.58 GMAC (timm/fvcore tables) = 35.2 GFLOP forward
    assert vit / 1e9 == pytest.approx(35.16, rel=0.01)
    # BERT-base over 128 tokens: 12 x (24 n d^2 + 4 n^2 d) = 22.3 GFLOP
    assert (per["text_linear"] + per["text_attention"]) / 1e9 == pytest.approx(22.26, rel=0.005)
    # ours fuses the [CLS] query only and projects each text once: per sample, text projection
    # 2*128*768^2 and K, V 2*128*1536*768 once; per pair (3 a sample), Q, image projection and
    # output 2*768^2 each and attention 4*128*768: 0.465 GFLOP
    fusion = per["fusion_projections"] + per["fusion_linear"] + per["fusion_attention"]
    assert fusion == 2 * 128 * 768**2 + 2 * 128 * 1536 * 768 + 3 * (3 * 2 * 768**2 + 4 * 128 * 768)
    assert step.per_sample / 1e9 == pytest.approx(173.6, rel=0.005)
    # the reference fuses all 197 image tokens: 1.23 GFLOP per pair
    reference = train_step_flops(load_config(ModelConfig, preset="base", section="model",
                                             overrides=["model.fusion=reference"]), batch=128)
    per_ref = {k: v.forward / 128 for k, v in reference.parts.items()}
    fusion_ref = per_ref["fusion_projections"] + per_ref["fusion_linear"] + per_ref["fusion_attention"]
    assert fusion_ref / 3 / 1e9 == pytest.approx(1.23, rel=0.01)
    assert reference.per_sample / 1e9 == pytest.approx(183.2, rel=0.005)


def test_backward_rules():
    cfg = load_config(ModelConfig, preset="tiny", section="model")
    step = train_step_flops(cfg, batch=4)
    assert step.parts["image_patch_embed"].backward == step.parts["image_patch_embed"].forward
    assert step.parts["hard_negative_similarity"].backward == 0
    assert step.parts["text_linear"].backward == 2 * step.parts["text_linear"].forward
    attention = step.parts["image_attention"]
    assert attention.recompute == attention.forward // 2
    assert step.total_with_recompute > step.total
    single = train_step_flops(cfg, batch=1)  # ITM needs a batch of 2 for its negatives
    assert "fusion_attention" not in single.parts and "itm_head" not in single.parts
    reference = train_step_flops(load_config(ModelConfig, preset="tiny", section="model",
                                             overrides=["model.fusion=reference", "model.fusion_layers=0"]), 4)
    assert reference.parts["fusion_attention"].recompute == 0


@pytest.mark.parametrize("overrides", [
    [],
    ["model.fusion=reference", "model.fusion_layers=0"],
    ["model.fusion_layers=2", "model.itm_weight=0"],
])
def test_analytic_count_equals_flop_counter(overrides):
    """A real check: the formula must reproduce FlopCounterMode matmul for matmul."""
    cfg = load_config(ModelConfig, preset="tiny", section="model", overrides=[*SMALL, *overrides])
    torch.manual_seed(0)
    model = MultimodalModel(cfg)
    counted = count_train_flops(model, *synthetic_batch(cfg, 3, "cpu"))
    analytic = train_step_flops(cfg, 3)
    assert analytic.total_with_recompute == pytest.approx(counted, rel=1e-4)
    assert analytic.total / counted == pytest.approx(1.0, abs=0.03)  # model FLOPs: recompute left out


@pytest.mark.parametrize("name", sorted(VIT_SIZES))
def test_vit_table_matches_timm(name):
    model = timm.create_model(name, pretrained=False, num_classes=0, img_size=32, depth=1)
    sizes = VIT_SIZES[name]
    assert model.embed_dim == sizes["width"]
    assert model.blocks[0].mlp.fc1.out_features == sizes["mlp_width"]
    assert model.patch_embed.patch_size[0] == sizes["patch"]
    assert timm.create_model(name, pretrained=False, num_classes=0, img_size=32, embed_dim=64,
                             num_heads=2).blocks.__len__() == sizes["layers"]


def test_bad_input_names_the_field():
    cfg = load_config(ModelConfig, preset="tiny", section="model", overrides=["model.image_encoder=resnet18"])
    with pytest.raises(ConfigError, match="model.image_encoder"):
        train_step_flops(cfg, 2)
    with pytest.raises(ConfigError, match="batch"):
        train_step_flops(load_config(ModelConfig, preset="tiny", section="model"), 0)
