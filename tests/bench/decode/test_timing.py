"""How the decode benchmark times a pipeline from several threads."""

from __future__ import annotations

import threading

import torch

from mmscale.bench.decode.timing import time_threads


def test_threaded_ceiling_visits_each_chunk_once_per_round_across_threads():
    seen, lock = [], threading.Lock()

    def fn(chunk):
        with lock:
            seen.append((chunk[0], threading.current_thread().name))

    chunks = [[k] * 4 for k in range(3)]  # 3 chunks of 4 "images"
    row = time_threads("t2", fn, chunks, 2, 20, torch.device("cpu"))
    # warm-up: one chunk per thread; then ceil(20 / 4) = 5 chunks split over the two threads
    timed = seen[2:]
    assert row.images == 20 and sorted(c for c, _ in timed) == [0, 0, 1, 1, 2]
    assert len({tid for _, tid in timed}) == 2 and row.img_per_s > 0 and "2 thread(s)" in row.note
