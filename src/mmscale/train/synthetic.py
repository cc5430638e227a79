"""Synthetic device batches of the model's input shapes, for benchmarks that must not wait on data."""

from __future__ import annotations

import torch

from mmscale.model.config import VOCAB_SIZE, ModelConfig


def synthetic_batch(model_cfg: ModelConfig, batch_size: int, device="cpu", seed: int = 0,
                    pad_frac: float = 0.0):
    """(pixels float32 [B,3,S,S], ids int64 [B,L], mask int64 [B,L]) already on ``device``.

    ``pad_frac`` > 0 pads the tail of every caption (mask 0) to exercise the padding path.
    Token id 101 ([CLS]) starts every caption, as the BERT tokenizer does.
    """
    gen = torch.Generator().manual_seed(seed)
    side, length = model_cfg.image_size, model_cfg.max_text_len
    pixels = torch.randn(batch_size, 3, side, side, generator=gen)
    ids = torch.randint(1000, VOCAB_SIZE, (batch_size, length), generator=gen)
    ids[:, 0] = 101
    mask = torch.ones(batch_size, length, dtype=torch.long)
    keep = max(1, round(length * (1.0 - pad_frac)))
    mask[:, keep:] = 0
    ids[:, keep:] = 0
    return pixels.to(device), ids.to(device), mask.to(device)
