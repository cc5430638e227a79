"""``Batch``: what the loader yields. A plain class with ``pin_memory`` so DataLoader can pin it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmscale.data.skips import SkipCounter


@dataclass
class Batch:
    images: torch.Tensor  # uint8 [B, 3, H, W]; normalize on the device with normalize.to_model_input
    input_ids: torch.Tensor  # int64 [B, L]
    attention_mask: torch.Tensor  # int64 [B, L], 1 = real token
    captions: list[str]
    skips: SkipCounter = field(default_factory=SkipCounter)  # the samples this batch read
    indices: torch.Tensor | None = None  # int64 [B], manifest rows of the used samples (None for wds)

    def __len__(self) -> int:
        return len(self.captions)

    def pin_memory(self) -> "Batch":
        """Called by DataLoader's pin thread: page-locked tensors make the H2D copy asynchronous."""
        self.images = self.images.pin_memory()
        self.input_ids = self.input_ids.pin_memory()
        self.attention_mask = self.attention_mask.pin_memory()
        return self

    def to(self, device, non_blocking: bool = True) -> "Batch":
        """Move tensors (still uint8 images) to ``device``."""
        return Batch(self.images.to(device, non_blocking=non_blocking),
                     self.input_ids.to(device, non_blocking=non_blocking),
                     self.attention_mask.to(device, non_blocking=non_blocking),
                     self.captions, self.skips, self.indices)
