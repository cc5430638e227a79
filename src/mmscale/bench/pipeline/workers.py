"""Worker-side host stages of the CPU input path, timed inside the DataLoader workers.

``TimedBatchDataset`` is the loader's ``IndexedDataset`` + ``Collator`` run as one batched
``__getitem__`` (DataLoader with ``batch_size=None`` and a batch sampler), so a single worker
call produces a whole batch and can time every part of it: per sample ``read`` (file bytes),
``decode`` (header, DCT-scaled decode, EXIF rotation, RGB), ``resize`` (to S x S, to uint8 CHW);
per batch ``tokenize`` and ``collate`` (skip counting, stacking). The work is the CPU path's own
functions in the CPU path's order (``data.image``), split where ``decode_image`` does it in one
call. The stages are cut from one chain of ``perf_counter`` marks, so they partition the
worker's batch time: the loop's own bookkeeping (and a preemption on a busy host) lands in the
stage it interrupts, never in a gap. The stage times travel back with the batch
(``TimedBatch.host_stage_ms``), so aggregating across workers needs no shared state; ``pin`` and
``h2d`` are timed in the main process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import BatchSampler, DataLoader

from mmscale.data.batch import Batch
from mmscale.data.image import DECODE_ERRORS, SampleSkip, decode_skip, open_image, read_bytes, to_rgb
from mmscale.data.sampler import ResumableSampler
from mmscale.data.skips import SkipCounter, SkipReason

WORKER_STAGES = ("read", "decode", "resize", "tokenize", "collate")
HOST_STAGES = WORKER_STAGES + ("pin", "h2d")


@dataclass
class TimedBatch(Batch):
    host_stage_ms: dict = field(default_factory=dict)  # worker stages, summed over the batch
    batch_ms: float = 0.0  # worker wall time for this batch, measured around all of it
    worker_id: int = -1


def timed_decode(data: bytes, image_size: int, max_image_pixels: int) -> tuple[torch.Tensor, float]:
    """``data.image.decode_image`` split in two timed parts: (image, ``perf_counter`` at the end of
    the decode); the resize ends when this returns."""
    try:
        img = open_image(data, max_image_pixels)
        if img.format == "JPEG":
            img.draft("RGB" if img.mode == "RGB" else None, (image_size, image_size))
        img = ImageOps.exif_transpose(img) or img
        img.load()
        img = to_rgb(img)
        decoded = time.perf_counter()
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
        image = torch.from_numpy(np.array(img)).permute(2, 0, 1)  # (3, S, S) uint8
    except SampleSkip:
        raise
    except DECODE_ERRORS as exc:
        raise decode_skip(exc) from None
    return image, decoded


class TimedBatchDataset(torch.utils.data.Dataset):
    """``dataset[list_of_rows] -> TimedBatch``: index it through a ``BatchSampler``."""

    def __init__(self, index, tokenizer, image_size: int = 224, max_image_pixels: int = 64_000_000,
                 max_text_len: int = 128):
        self.index, self.tokenizer = index, tokenizer
        self.image_size, self.max_image_pixels, self.max_text_len = image_size, max_image_pixels, max_text_len

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows: list[int]) -> TimedBatch:
        ms = dict.fromkeys(WORKER_STAGES, 0.0)
        start = mark = time.perf_counter()

        def lap(stage: str, until: float | None = None) -> None:
            """The time since the last mark goes to ``stage``; the mark moves on."""
            nonlocal mark
            now = time.perf_counter() if until is None else until
            ms[stage] += (now - mark) * 1e3
            mark = now

        skips, good = SkipCounter(), []
        for i in rows:
            path = self.index.path(i)
            stage = "read"
            try:
                data = read_bytes(path)
                caption = self.index.caption(i)
                if not caption.strip():
                    raise SampleSkip(SkipReason.empty_caption)
                lap("read")
                stage = "decode"
                image, decoded = timed_decode(data, self.image_size, self.max_image_pixels)
                lap("decode", decoded)
                lap("resize")
            except SampleSkip as skip:
                skips.add(skip.reason, path, detail=skip.detail)
                lap(stage)  # a failed sample's time goes to the stage that failed
                continue
            good.append((image, caption, int(i)))
        captions = [c for _, c, _ in good]
        input_ids, attention_mask = self.tokenizer.encode_batch(captions, self.max_text_len)
        lap("tokenize")
        skips.add_used(len(good))
        size = self.image_size
        images = torch.empty((len(good), 3, size, size), dtype=torch.uint8)  # [B, 3, S, S]
        for row, (image, _, _) in enumerate(good):
            images[row].copy_(image)
        indices = torch.tensor([i for _, _, i in good], dtype=torch.int64)
        lap("collate")
        info = torch.utils.data.get_worker_info()
        return TimedBatch(images, input_ids, attention_mask, captions, skips, indices,
                          host_stage_ms=ms, batch_ms=(mark - start) * 1e3,
                          worker_id=info.id if info is not None else -1)


def build_timed_loader(index, tokenizer, batch_size: int, image_size: int, max_image_pixels: int,
                       max_text_len: int, num_workers: int, seed: int = 0, prefetch_factor: int = 4):
    """A DataLoader of ``TimedBatch`` over ``index`` (pinning is left to the caller, to time it)."""
    dataset = TimedBatchDataset(index, tokenizer, image_size, max_image_pixels, max_text_len)
    sampler = BatchSampler(ResumableSampler(len(index), seed, True), batch_size, drop_last=True)
    return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=num_workers,
                      worker_init_fn=_one_thread if num_workers else None,
                      persistent_workers=num_workers > 0,
                      prefetch_factor=prefetch_factor if num_workers else None)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def aggregate_host_stages(batches: list[TimedBatch], main_ms: list[dict] | None = None) -> dict:
    """Mean ms per batch of every host stage across all workers, and the worker's own batch time.
    ``main_ms``: per-batch ``pin``/``h2d`` from the main process, in the same order."""
    if not batches:
        raise ValueError("no batches")
    n = len(batches)
    stage_ms = {k: sum(b.host_stage_ms.get(k, 0.0) for b in batches) / n for k in WORKER_STAGES}
    for k in ("pin", "h2d"):
        values = [m.get(k) for m in (main_ms or []) if m.get(k) is not None]
        stage_ms[k] = sum(values) / len(values) if values else None
    samples = sum(len(b) for b in batches)
    workers = sorted({b.worker_id for b in batches})
    return {
        "host_stage_ms": stage_ms,  # mean per batch
        "worker_batch_ms": sum(b.batch_ms for b in batches) / n,  # the worker stages partition it
        "worker_ms_per_sample": {k: stage_ms[k] * n / samples for k in WORKER_STAGES} if samples else {},
        "batches": n,
        "workers_seen": len(workers),
        "batches_per_worker": {w: sum(b.worker_id == w for b in batches) for w in workers},
    }
