"""Memory of a DataLoader iterating a huge manifest: columnar index vs a list of dicts
(``mmscale bench index-memory``).

For each layout, the main process builds the index, a DataLoader with ``--workers`` forked
workers iterates it (the dataset returns path and caption lengths, no image decode: what is
measured is the index), and a sampler thread records memory every ``--interval-s``.

The measure is **total PSS** (proportional set size) summed over the main process and its
workers, read from ``/proc/PID/smaps_rollup``: each shared page is split between the processes
that map it, so the sum counts every physical page once. Summing RSS would count the shared
index once per worker (9x for 8 workers) even though it exists once in RAM; summing USS would
miss it altogether. Growth is PSS at the end minus PSS once all workers had started.

To finish in minutes on a small machine, each layout visits every ``stride``-th row in a
shuffled order (as training does), so every worker's rows span the whole index range; the list-of-dicts layout
uses ``naive_rows`` rows because at 10M rows it needs ~4 GB per process and copy-on-read would
take 8 workers past the memory of a typical machine. Its per-row figures are scaled to
``rows`` and marked as extrapolated.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psutil
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mmscale.data.index import IndexBuilder, ManifestIndex
from mmscale.data.sampler import iter_chunked

MIB = 2**20
RESULTS_FILE = "index_memory.json"
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
PLACES = ("at the top left", "in the center", "at the bottom right", "on the left", "at the top")


def row(i: int) -> tuple[str, str]:
    """A synthetic manifest row of realistic length (26-byte path, ~60-byte caption)."""
    caption = (f"{COLOURS[i % 8]} {SHAPES[(i // 8) % 6]} {PLACES[(i // 48) % 5]} and a "
               f"{COLOURS[(i // 7) % 8]} {SHAPES[(i // 11) % 6]}, sample {i}")
    return f"images/{i // 1000:04d}/{i:07d}.jpg", caption


def columnar(n: int) -> ManifestIndex:
    builder = IndexBuilder(image_root="/data")
    builder.start_file("manifest.jsonl")
    for i in range(n):
        path, caption = row(i)
        builder.add(path, caption, i + 1)
    return builder.build()


def naive(n: int) -> list[dict]:
    return [dict(zip(("image", "caption"), row(i))) for i in range(n)]


class IndexOnly(Dataset):
    """Returns the lengths of path and caption: reads the row, decodes nothing."""

    def __init__(self, index):
        self.index = index
        self.columnar = isinstance(index, ManifestIndex)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> int:
        if self.columnar:
            return len(self.index.path(i)) + len(self.index.caption(i))
        entry = self.index[i]
        return len(entry["image"]) + len(entry["caption"])

    def __getitems__(self, indices: list[int]) -> list[int]:  # one call per batch (torch >= 2.1)
        return [self[i] for i in indices]


def pss_bytes(pid: int) -> tuple[int, int, int]:
    """(PSS, RSS, USS) of one process in bytes, from /proc/PID/smaps_rollup."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0].endswith(":"):
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Pss", 0), fields.get("Rss", 0), uss


def tree_memory() -> dict:
    """Summed PSS/RSS/USS of this process and its children (the DataLoader workers)."""
    pids = [os.getpid()] + [c.pid for c in psutil.Process().children(recursive=True)]
    total = np.zeros(3, dtype=np.int64)
    main = None
    for pid in pids:
        try:
            values = np.array(pss_bytes(pid))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        total += values
        main = values if main is None else main
    return {"processes": len(pids), "pss_mib": total[0] / MIB, "rss_sum_mib": total[1] / MIB,
            "uss_mib": total[2] / MIB, "main_rss_mib": (main[1] if main is not None else 0) / MIB}


class ChunkedOrder(Sampler[int]):
    def __init__(self, order: np.ndarray):
        self.order = order

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return iter_chunked(self.order)


@dataclass
class IndexMemoryRow:
    layout: str  # columnar | list_of_dicts
    rows: int
    workers: int
    visited: int  # rows read by the loader (every stride-th)
    build_s: float
    iterate_s: float
    index_mib: float  # main process memory added by building the index (RSS)
    pss_start_mib: float  # total PSS once all workers were up
    pss_peak_mib: float
    pss_end_mib: float
    pss_growth_mib: float  # end - start
    rss_sum_end_mib: float  # naive sum of RSS (counts shared pages once per process)
    extrapolated_pss_peak_mib_at: dict = field(default_factory=dict)  # {rows: MiB}, list_of_dicts only
    series: list = field(default_factory=list)  # [(t_s, fraction_done, pss_mib)]


def measure(layout: str, n: int, workers: int, stride: int, batch_size: int, interval_s: float) -> IndexMemoryRow:
    gc.collect()
    before = tree_memory()["main_rss_mib"]
    start = time.perf_counter()
    index = columnar(n) if layout == "columnar" else naive(n)
    build_s = time.perf_counter() - start
    gc.collect()
    index_mib = tree_memory()["main_rss_mib"] - before
    # Shuffled, as in training: every worker's batches then span the whole index range. Kept as
    # an int64 array and fed in chunks (a list of 10M Python ints would itself be ~400 MB).
    visit = np.random.default_rng(0).permutation(np.arange(0, n, stride))
    loader = DataLoader(IndexOnly(index), batch_size=batch_size, sampler=ChunkedOrder(visit), num_workers=workers,
                        collate_fn=sum, prefetch_factor=2, persistent_workers=False)
    series, done, stop = [], [0], threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            mem = tree_memory()
            series.append((round(time.perf_counter() - t0, 2), round(done[0] / len(visit), 4), round(mem["pss_mib"], 1)))
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    iterator = iter(loader)
    next(iterator)  # all workers forked and working
    done[0] += min(batch_size, len(visit))
    start_mem = tree_memory()
    thread.start()
    n_batches = len(loader)
    end_mem = start_mem if n_batches == 1 else None
    for k, _ in enumerate(iterator, start=2):
        done[0] = min(done[0] + batch_size, len(visit))
        if k == n_batches:  # last batch: measure while the workers are still alive
            end_mem = tree_memory()
    stop.set()
    thread.join()
    iterate_s = time.perf_counter() - t0
    del iterator, loader
    peak = max([p for _, _, p in series] + [end_mem["pss_mib"], start_mem["pss_mib"]])
    return IndexMemoryRow(layout, n, workers, len(visit), build_s, iterate_s, index_mib, start_mem["pss_mib"],
                          peak, end_mem["pss_mib"], end_mem["pss_mib"] - start_mem["pss_mib"],
                          end_mem["rss_sum_mib"], series=series)


def bench_index_memory(rows: int = 10_000_000, naive_rows: int = 1_000_000, workers: int = 8, stride: int = 1,
                       batch_size: int = 4096, interval_s: float = 0.5, limit_gib: float = 2.0,
                       out: str = "runs/index_memory", say=print) -> dict:
    """Both layouts in turn (a layout with 0 rows is left out): the result written to
    OUT/index_memory.json, with whether the columnar peak PSS stayed within ``limit_gib``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one intra-op thread, as in a DataLoader worker: the memory measured is the index's
    measured = []
    try:
        for layout, n in (("columnar", rows), ("list_of_dicts", naive_rows)):
            if n <= 0:
                continue
            say(f"{layout}: {n:,} rows, {workers} workers ...")
            r = measure(layout, n, workers, stride, batch_size, interval_s)
            if layout == "list_of_dicts" and n < rows:
                # Per-row cost of the index in every process after copy-on-read, scaled linearly.
                per_row = (r.pss_peak_mib - r.pss_start_mib + r.index_mib) / n
                r.extrapolated_pss_peak_mib_at = {str(rows): r.pss_start_mib - r.index_mib + per_row * rows}
            measured.append(r)
    finally:
        torch.set_num_threads(threads)
    columnar_row = measured[0] if measured and measured[0].layout == "columnar" else None
    result = {"rows": [asdict(r) for r in measured], "limit_mib": limit_gib * 1024,
              "measure": "sum of PSS over main + workers (/proc/PID/smaps_rollup)",
              "columnar_within_limit": bool(columnar_row and columnar_row.pss_peak_mib <= limit_gib * 1024)}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / RESULTS_FILE).write_text(json.dumps(result, indent=1))
    return result
