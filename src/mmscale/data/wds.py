"""WebDataset tar shards (``key.jpg|png|webp`` + ``key.txt``) streamed through the ``webdataset`` library.

Shards are split across nodes and workers by webdataset; samples come out as the same ``Sample`` /
``BadSample`` values as the indexed formats. A key without its image or caption, and a shard that
cannot be read to the end, are counted like any other bad sample.
"""

from __future__ import annotations

import random

import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from mmscale.data.dataset import load_sample
from mmscale.data.skips import BadSample, SkipReason
from mmscale.data.text import ENCODING, ERRORS

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXTS = ("txt", "caption", "text")


class WdsDataset(IterableDataset):
    """Iterates tar shards; ``shuffle_buffer`` > 0 shuffles samples in a seeded buffer."""

    def __init__(self, shards: list[str], image_size: int = 224, max_image_pixels: int = 64_000_000,
                 shuffle_buffer: int = 0, seed: int = 0, limit: int | None = None):
        self.shards, self.image_size, self.max_image_pixels = list(shards), image_size, max_image_pixels
        self.shuffle_buffer, self.seed, self.limit, self.epoch = shuffle_buffer, seed, limit, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _raw(self, pending: list):
        def handler(exc: Exception) -> bool:
            # Called by webdataset inside this iterator on a read error; the count travels with
            # the stream and the rest of the shard list goes on.
            pending.append(BadSample(SkipReason.bad_shard.value, getattr(exc, "filename", "") or "shard", None, str(exc)))
            return True

        return wds.WebDataset(self.shards, shardshuffle=len(self.shards) if self.shuffle_buffer else False,
                              nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker,
                              handler=handler, empty_check=False, seed=self.seed + self.epoch)

    def _samples(self):
        pending: list[BadSample] = []
        for raw in self._raw(pending):
            while pending:
                yield pending.pop(0)
            where = f"{raw.get('__url__', '?')}:{raw.get('__key__', '?')}"
            # a tar member name may hold bytes that are not UTF-8 (lone surrogates): escaped, so it prints
            where = where.encode("utf-8", "backslashreplace").decode("utf-8")
            image_ext = next((e for e in IMAGE_EXTS if e in raw), None)
            caption_ext = next((e for e in CAPTION_EXTS if e in raw), None)
            if image_ext is None or caption_ext is None:
                missing = "image (.jpg/.png/.webp)" if image_ext is None else "caption (.txt)"
                yield BadSample(SkipReason.missing_field.value, where, None, f"no {missing}")
                continue
            caption = raw[caption_ext].decode(ENCODING, ERRORS)  # bad bytes: skipped as bad_text
            yield load_sample(raw[image_ext], caption, -1, where, None, self.image_size, self.max_image_pixels)
        yield from pending

    def __iter__(self):
        stream = self._samples()
        if self.limit is not None:
            info = get_worker_info()
            share = self.limit if info is None else -(-self.limit // info.num_workers)
            stream = (s for _, s in zip(range(share), stream))
        if not self.shuffle_buffer:
            yield from stream
            return
        info = get_worker_info()
        rng = random.Random(hash((self.seed, self.epoch, info.id if info else 0)))
        buffer = []
        for item in stream:
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer
