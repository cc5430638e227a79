"""Collate: drop bad samples (counting them), stack uint8 images, tokenize the batch in one call."""

from __future__ import annotations

import torch
from torch.utils.data import get_worker_info

from mmscale.data.batch import Batch
from mmscale.data.dataset import Sample
from mmscale.data.gpu_raw import collate_raw
from mmscale.data.skips import BadSample, SkipCounter


class Collator:
    """Picklable collate function; runs in the worker, so tokenization is parallel across workers."""

    def __init__(self, tokenizer, max_text_len: int = 128, image_size: int = 224):
        self.tokenizer, self.max_text_len, self.image_size = tokenizer, max_text_len, image_size

    def __call__(self, items: list[Sample | BadSample]) -> Batch:
        skips = SkipCounter()
        good: list[Sample] = []
        for item in items:
            if isinstance(item, BadSample):
                skips.add(item.reason, item)
            else:
                good.append(item)
        skips.add_used(len(good))
        captions = [s.caption for s in good]
        input_ids, attention_mask = self.tokenizer.encode_batch(captions, self.max_text_len)
        indices = torch.tensor([s.index for s in good], dtype=torch.int64)
        images = _batch_buffer(len(good), self.image_size)  # [B, 3, S, S]
        for row, sample in enumerate(good):
            images[row].copy_(sample.image)  # CHW view of HWC pixels -> contiguous slot
        return Batch(images, input_ids, attention_mask, captions, skips, indices)


def _batch_buffer(batch: int, size: int) -> torch.Tensor:
    """uint8 [B, 3, S, S], allocated in shared memory when in a DataLoader worker (as torch's
    default_collate does): sending a regular tensor to the main process would copy it into shared
    memory first, a second pass over every batch's pixels."""
    shape = (batch, 3, size, size)
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.uint8)
    storage = torch.UntypedStorage._new_shared(batch * 3 * size * size)
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)


class RawCollator(Collator):
    """``decode=gpu`` collate: ``(RawSample, path)`` / ``BadSample`` items -> ``gpu_raw.RawBatch``."""

    def __call__(self, items):
        skips, samples, paths = SkipCounter(), [], []
        for item in items:
            if isinstance(item, BadSample):
                skips.add(item.reason, item)
            else:
                samples.append(item[0])
                paths.append(item[1])
        skips.add_used(len(samples))
        return collate_raw(samples, self.tokenizer, self.max_text_len, skips, paths, self.image_size)
