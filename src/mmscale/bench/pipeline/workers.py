"""Worker-side host stages of the CPU input path, timed inside the DataLoader workers.

``TimedBatchDataset`` is the loader's ``IndexedDataset`` + ``Collator`` run as one batched
``__getitem__`` (DataLoader with ``batch_size=None`` and a batch sampler), so a single worker
call produces a whole batch and can time every part of it: per sample ``read`` (file bytes),
``decode`` (header, DCT-scaled decode, EXIF rotation, RGB), ``resize`` (to S x S, to uint8 CHW);
per batch ``tokenize`` and ``collate`` (skip counting, stacking). The work is the CPU path's own
functions in the CPU path's order (``data.image``), split where ``decode_image`` does it in one
call. The stage times travel back with the batch (``TimedBatch.host_stage_ms``), so aggregating
across workers needs no shared state; ``pin`` and ``h2d`` are timed in the main process.
The overhead is a dozen ``perf_counter`` calls per sample (well under 1 us each).
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


def timed_decode(data: bytes, image_size: int, max_image_pixels: int) -> tuple[torch.Tensor, float, float]:
    """``data.image.decode_image`` split in two timed parts: (image, decode_ms, resize_ms)."""
    t0 = time.perf_counter()
    try:
        img = open_image(data, max_image_pixels)
        if img.format == "JPEG":
            img.draft("RGB" if img.mode == "RGB" else None, (image_size, image_size))
        img = ImageOps.exif_transpose(img) or img
        img.load()
        img = to_rgb(img)
        t1 = time.perf_counter()
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
        image = torch.from_numpy(np.array(img)).permute(2, 0, 1)  # (3, S, S) uint8
    except SampleSkip:
        raise
    except DECODE_ERRORS as exc:
        raise decode_skip(exc) from None
    t2 = time.perf_counter()
    return image, (t1 - t0) * 1e3, (t2 - t1) * 1e3


class TimedBatchDataset(torch.utils.data.Dataset):
    """``dataset[list_of_rows] -> TimedBatch``: index it through a ``BatchSampler``."""

    def __init__(self, index, tokenizer, image_size: int = 224, max_image_pixels: int = 64_000_000,
                 max_text_len: int = 128):
        self.index, self.tokenizer = index, tokenizer
        self.image_size, self.max_image_pixels, self.max_text_len = image_size, max_image_pixels, max_text_len

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows: list[int]) -> TimedBatch:
        start = time.perf_counter()
        ms = dict.fromkeys(WORKER_STAGES, 0.0)
        skips, good = SkipCounter(), []
        for i in rows:
            t0 = time.perf_counter()
            path = self.index.path(i)
            stage = "read"
            try:
                data = read_bytes(path)
                caption = self.index.caption(i)
                if not caption.strip():
                    raise SampleSkip(SkipReason.empty_caption)
                stage = "decode"
                t1 = time.perf_counter()
                ms["read"] += (t1 - t0) * 1e3
                image, decode_ms, resize_ms = timed_decode(data, self.image_size, self.max_image_pixels)
                ms["decode"] += decode_ms
                ms["resize"] += resize_ms
            except SampleSkip as skip:
                skips.add(skip.reason, path, detail=skip.detail)
                # a failed sample's time goes to the stage that failed, so nothing goes missing
                ms[stage] += (time.perf_counter() - (t0 if stage == "read" else t1)) * 1e3
                continue
            good.append((image, caption, int(i)))
        t0 = time.perf_counter()
        captions = [c for _, c, _ in good]
        input_ids, attention_mask = self.tokenizer.encode_batch(captions, self.max_text_len)
        t1 = time.perf_counter()
        skips.add_used(len(good))
        size = self.image_size
        images = torch.empty((len(good), 3, size, size), dtype=torch.uint8)  # [B, 3, S, S]
        for row, (image, _, _) in enumerate(good):
            images[row].copy_(image)
        indices = torch.tensor([i for _, _, i in good], dtype=torch.int64)
        end = time.perf_counter()
        ms["tokenize"] = (t1 - t0) * 1e3
        ms["collate"] = (end - t1) * 1e3
        info = torch.utils.data.get_worker_info()
        return TimedBatch(images, input_ids, attention_mask, captions, skips, indices,
                          host_stage_ms=ms, batch_ms=(end - start) * 1e3,
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
    """Mean ms per batch of every host stage across all workers, plus how well the worker stages
    add up to the worker's own batch time. ``main_ms``: per-batch ``pin``/``h2d`` from the main
    process, in the same order."""
    if not batches:
        raise ValueError("no batches")
    n = len(batches)
    stage_ms = {k: sum(b.host_stage_ms.get(k, 0.0) for b in batches) / n for k in WORKER_STAGES}
    for k in ("pin", "h2d"):
        values = [m.get(k) for m in (main_ms or []) if m.get(k) is not None]
        stage_ms[k] = sum(values) / len(values) if values else None
    batch_ms = sum(b.batch_ms for b in batches) / n
    worker_sum = sum(stage_ms[k] for k in WORKER_STAGES)
    samples = sum(len(b) for b in batches)
    workers = sorted({b.worker_id for b in batches})
    return {
        "host_stage_ms": stage_ms,  # mean per batch
        "worker_batch_ms": batch_ms,
        "worker_stages_sum_ms": worker_sum,
        "worker_unattributed_frac": (batch_ms - worker_sum) / batch_ms if batch_ms > 0 else 0.0,
        "worker_ms_per_sample": {k: stage_ms[k] * n / samples for k in WORKER_STAGES} if samples else {},
        "batches": n,
        "workers_seen": len(workers),
        "batches_per_worker": {w: sum(b.worker_id == w for b in batches) for w in workers},
    }
