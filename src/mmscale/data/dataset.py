"""Map-style dataset over a ``ManifestIndex``: row -> ``Sample`` or ``BadSample``, never an exception.

Workers return bad samples as values so that one broken file costs one sample, not the epoch;
``collate`` counts them and builds the batch from the good ones.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from mmscale.data.gpu_raw import prepare_sample
from mmscale.data.image import SampleSkip, decode_image, read_bytes
from mmscale.data.index import ManifestIndex
from mmscale.data.skips import BadSample, SkipReason
from mmscale.data.text import text_problem


class Sample(NamedTuple):
    """One usable image-caption pair, whatever the source format."""

    image: torch.Tensor  # uint8 [3, S, S]
    caption: str
    index: int  # manifest row, or -1 for streamed shards
    path: str  # image file, or shard/key for streamed shards


def load_sample(data: bytes, caption: str, index: int, path: str, line: int | None,
                image_size: int, max_image_pixels: int) -> Sample | BadSample:
    """Decode one sample's image bytes; a bad one comes back as a ``BadSample`` value."""
    try:
        check_caption(caption)
        image = decode_image(data, image_size, max_image_pixels)
    except SampleSkip as skip:
        return BadSample(skip.reason.value, path, line, skip.detail)
    return Sample(image, caption, index, path)


def check_caption(caption: str) -> None:
    """``SampleSkip`` for a caption the tokenizer must not see: blank, or not valid Unicode."""
    problem = text_problem(caption, "caption")
    if problem:
        raise SampleSkip(SkipReason.bad_text, problem)
    if not caption.strip():
        raise SampleSkip(SkipReason.empty_caption)


class IndexedDataset(Dataset):
    """Reads row ``i`` of the index: image file -> uint8 tensor, caption -> str."""

    def __init__(self, index: ManifestIndex, image_size: int = 224, max_image_pixels: int = 64_000_000):
        self.index, self.image_size, self.max_image_pixels = index, image_size, max_image_pixels

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Sample | BadSample:
        path = self.index.path(i)
        try:
            data = read_bytes(path)
        except SampleSkip as skip:
            return self._bad(i, path, skip.reason.value, skip.detail)
        sample = load_sample(data, self.index.caption(i), int(i), path, None, self.image_size,
                             self.max_image_pixels)
        if isinstance(sample, BadSample):
            return self._bad(i, path, sample.reason, sample.detail)
        return sample

    def _bad(self, i: int, path: str, reason: str, detail: str) -> BadSample:
        """A bad sample named by its image path and the manifest file:line that listed it."""
        file, line = self.index.source(i)
        return BadSample(reason, path, line, detail, listed_in=file)


class RawIndexedDataset(IndexedDataset):
    """For ``decode=gpu``: row ``i`` -> (``gpu_raw.RawSample``, path) with the JPEG still encoded.

    The header checks (and so the skip reasons) are the CPU path's; only the pixel work moves.
    """

    def __getitem__(self, i: int):
        path = self.index.path(i)
        try:
            data = read_bytes(path)
            check_caption(self.index.caption(i))  # in the CPU path's order, so the reasons agree
            raw = prepare_sample(data, self.index.caption(i), int(i), self.image_size, self.max_image_pixels)
        except SampleSkip as skip:
            return self._bad(i, path, skip.reason.value, skip.detail)
        return raw, path
