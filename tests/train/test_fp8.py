"""FP8 conversion: which linears go FP8, the errors that name the field, and a step that trains."""

import sys

import pytest
import torch

from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.model import ModelConfig, MultimodalModel
from mmscale.train.fp8 import convert_linears_to_fp8
from mmscale.train.synthetic import synthetic_batch

pytest.importorskip("torchao")  # a test dependency (pyproject); the import guard is tested below

SMALL = ["model.image_size=32", "model.image_depth=2", "model.max_text_len=16", "model.hidden_dim=64"]


def test_base_preset_converts_the_wide_matmuls_torchao_says_pay():
    model = MultimodalModel(load_config(ModelConfig, preset="base", section="model"))
    names = convert_linears_to_fp8(model, "tensorwise")
    # ViT-B: qkv (768->2304) and fc1 (768->3072) of 12 blocks; BERT-base: intermediate (768->3072) of 12
    assert len(names) == 36
    assert sum(".attn.qkv" in n for n in names) == 12 and sum(".mlp.fc1" in n for n in names) == 12
    assert sum(n.endswith("intermediate.dense") for n in names) == 12
    assert not any("head" in n for n in names)
    assert type(model.image_encoder.backbone.blocks[0].attn.qkv).__name__ == "Float8Linear"
    assert type(model.image_encoder.backbone.blocks[0].attn.proj) is torch.nn.Linear  # 768x768: not worth it


def test_all_layers_converts_every_fitting_linear_but_the_heads():
    model = MultimodalModel(load_config(ModelConfig, preset="tiny", section="model", overrides=SMALL))
    fitting = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
               and m.weight.shape[0] % 16 == 0 and m.weight.shape[1] % 16 == 0 and "head" not in n]
    assert convert_linears_to_fp8(model, "tensorwise", layers="all") == fitting
    assert type(model.itm_head) is torch.nn.Linear


def test_an_fp8_model_trains_and_keeps_its_parameter_names():
    cfg = load_config(ModelConfig, preset="tiny", section="model", overrides=SMALL)
    torch.manual_seed(0)
    model = MultimodalModel(cfg)
    names = set(model.state_dict())
    convert_linears_to_fp8(model, "tensorwise", layers="all")
    assert set(model.state_dict()) == names  # checkpoints load either way
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pixels, ids, mask = synthetic_batch(cfg, 4)
    losses = []
    for _ in range(8):  # the same batch: the loss must come down
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(pixels, ids, mask)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_bad_choices_and_a_missing_torchao_name_the_field(monkeypatch):
    model = MultimodalModel(load_config(ModelConfig, preset="tiny", section="model", overrides=SMALL))
    with pytest.raises(ConfigError, match="train.fp8"):
        convert_linears_to_fp8(model, "fp4")
    with pytest.raises(ConfigError, match="train.fp8_layers"):
        convert_linears_to_fp8(model, "tensorwise", layers="some")
    monkeypatch.setitem(sys.modules, "torchao.float8", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="torchao"):
        convert_linears_to_fp8(model, "tensorwise")
