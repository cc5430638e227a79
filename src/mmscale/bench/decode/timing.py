"""How ``mmscale bench gpu-decode`` times a pipeline: images/s of a batch stream after its warm-up
batches, or of a function over in-memory chunks from several threads at once."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import torch


@dataclass
class Row:
    pipeline: str
    images: int
    seconds: float
    img_per_s: float
    workers: int
    note: str = ""


def batch_len(batch) -> int:
    return batch["pixel_values"].shape[0] if isinstance(batch, dict) else len(batch)


def time_loader(name: str, batches, n_images_max: int, device, finish, workers: int, warmup_batches: int = 2) -> Row:
    """Images/s over batches after ``warmup_batches`` (worker start-up excluded)."""
    count, start = 0, None
    for k, batch in enumerate(batches):
        if k == warmup_batches:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            count = 0
        finish(batch)
        count += batch_len(batch)
        if start is not None and count >= n_images_max:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()  # host-device sync: all decode/normalize work done
    seconds = time.perf_counter() - start
    return Row(name, count, seconds, count / seconds, workers)


def time_threads(name: str, fn, chunks: list, threads: int, n_images_max: int, device) -> Row:
    """Images/s of ``fn`` over in-memory chunks from ``threads`` Python threads at once, each on its
    own CUDA stream, taking every ``threads``-th chunk; the note gives the process's CPU use.

    Why: torchvision runs its nvjpeg decoder behind one process-wide lock, so a second thread
    cannot decode at the same time, but it can resize while the other decodes. Whether that adds
    throughput decides if the pipeline should run two decoders."""
    rounds = -(-n_images_max // len(chunks[0]))
    order = [chunks[k % len(chunks)] for k in range(rounds)]
    streams = [torch.cuda.Stream(device) if device.type == "cuda" else None for _ in range(threads)]

    def work(t: int, items: list) -> None:
        ctx = torch.cuda.stream(streams[t]) if streams[t] is not None else contextlib.nullcontext()
        with ctx:
            for chunk in items:
                fn(chunk)
        if streams[t] is not None:
            streams[t].synchronize()  # host sync: this thread's work is done when it returns

    for t in range(threads):  # warm-up: each stream and thread once
        work(t, order[:1])
    pool = [threading.Thread(target=work, args=(t, order[t::threads])) for t in range(threads)]
    cpu0, start = time.process_time(), time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - start
    cores = (time.process_time() - cpu0) / seconds
    count = sum(len(c) for c in order)
    return Row(name, count, seconds, count / seconds, 0, note=f"{threads} thread(s), CPU {cores:.2f} cores")
