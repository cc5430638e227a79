"""Data-loading throughput: the reference pipeline against ours, on the same files in one run.

Variants (rows), all over the first ``n_images`` samples of one manifest, page cache warmed first:
- ``reference_loop``: the reference ``MultiModalDataset`` indexed in a plain loop, one process;
- ``reference_dataloader``: the same dataset in a DataLoader with workers, pinned memory and
  persistent workers (the articles' "optimized" settings);
- ``ours_cpu``: ``build_loader`` (uint8 decode with JPEG draft, batch tokenization) at the same
  worker count, plus ``to_model_input`` on the training device so the output is the same
  normalized float batch the reference produces;
- ``decode_only``: our read + decode + resize in the same number of processes, no tokenization,
  no batching, no inter-process transfer of pixels: the ceiling for ``ours_cpu``;
- ``decode_only_full``: the same without ``Image.draft`` (full-resolution JPEG decode).
DataLoader variants are timed over a whole second pass: the first pass starts the (persistent)
workers untimed, and a clock started from ``iter()`` counts no image the workers decoded before
it (one started after k batches would count the batches they had prefetched meanwhile).
The page-cache warm-up also vets every image (read + reduced-scale decode): a missing or
undecodable one is counted as a skip with its reason and left out of every variant, since the
reference pipeline has no skip handling of its own (ours skips the same samples itself).
With ``repeats`` > 1 the variants run in alternating order and each row is the median run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass

import torch

from mmscale.data.config import DataConfig
from mmscale.data.image import SampleSkip, decode_image, load_image, read_bytes
from mmscale.data.loader import build_loader
from mmscale.data.normalize import to_model_input
from mmscale.data.readers import read_manifest
from mmscale.data.reference import MultiModalDataset, reference_loader, reference_tokenizer
from mmscale.data.skips import BadSample, SkipCounter
from mmscale.data.tokenizer import load_tokenizer
from mmscale.errors import DataError


@dataclass
class DataLoadingRow:
    variant: str
    workers: int
    batch_size: int
    n_images: int  # images timed
    seconds: float
    img_per_s: float
    vs_reference_dataloader: float = 0.0  # img_per_s / reference_dataloader's
    normalize_device: str = ""  # where ours normalizes (cuda on a GPU machine)
    note: str = ""
    repeats: int = 1  # runs of this variant; the row is the median one

    def as_dict(self) -> dict:
        return asdict(self)


def min_images(batch_size: int) -> int:
    """Fewest usable images the DataLoader variants can time: one whole batch a pass."""
    return batch_size


def _vet(path: str, max_image_pixels: int) -> None:
    """Read the file (warming the page cache) and decode it at a reduced scale; ``SampleSkip`` if bad."""
    decode_image(read_bytes(path), 16, max_image_pixels, draft=True)


def _second_pass(loader, on_batch) -> tuple[int, float]:
    """(images, seconds) of a whole second pass over ``loader``; ``on_batch(batch) -> n_images``."""
    for batch in loader:  # starts the workers, untimed
        on_batch(batch)
    count, start = 0, time.perf_counter()
    for batch in loader:
        count += on_batch(batch)
    return count, time.perf_counter() - start


def _decode_chunk(args) -> int:
    paths, image_size, draft = args

    torch.set_num_threads(1)
    for path in paths:
        load_image(path, image_size, draft=draft)
    return len(paths)


def _decode_only(paths: list[str], workers: int, image_size: int, draft: bool) -> tuple[int, float]:
    chunks = [(paths[i:i + 16], image_size, draft) for i in range(0, len(paths), 16)]
    with mp.get_context("fork").Pool(max(workers, 1)) as pool:
        pool.map(_decode_chunk, chunks[:workers])  # warm-up: import and first decode in every process
        start = time.perf_counter()
        n = sum(pool.imap_unordered(_decode_chunk, chunks))
        return n, time.perf_counter() - start


def bench_data_loading(data_path: str, n_images: int = 512, workers: int = 2, batch_size: int = 32,
                       image_size: int = 224, device: str | None = None,
                       variants: tuple[str, ...] = ("reference_loop", "reference_dataloader", "ours_cpu",
                                                    "decode_only", "decode_only_full"),
                       repeats: int = 1, progress=None, skips=None) -> list[DataLoadingRow]:
    """Run each variant ``repeats`` times over the same files; one row per variant (the median run).

    Bad manifest rows and bad images among the first ``n_images`` are skipped, not fatal; they are
    counted by reason in ``skips`` (a ``SkipCounter``) when one is given.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if n_images < 1 or batch_size < 1 or repeats < 1 or workers < 0:
        raise ValueError(f"need n_images, batch_size, repeats >= 1 and workers >= 0; got "
                         f"{n_images}, {batch_size}, {repeats}, {workers}")
    skips = skips if skips is not None else SkipCounter()
    max_image_pixels = DataConfig().max_image_pixels  # the limit ours applies, so both sides skip the same images
    index = read_manifest(data_path, limit=n_images, counter=skips)
    paths, captions = [], []
    for i in range(len(index)):  # warm the page cache so no variant pays the first disk read
        path = index.path(i)
        try:
            _vet(path, max_image_pixels)
        except SampleSkip as skip:
            skips.add(skip.reason, BadSample(skip.reason.value, path, detail=skip.detail))
            continue
        skips.add_used()
        paths.append(path)
        captions.append(index.caption(i))
    need = min_images(batch_size)
    if len(paths) < need:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(skips.by_reason.items()))
        raise DataError(data_path, f"{len(paths)} usable images among the first {skips.read} samples"
                                   + (f" (skipped: {reasons})" if reasons else "")
                                   + f"; the DataLoader variants need at least {need} (one batch of "
                                     f"{batch_size})")

    def say(text: str) -> None:
        if progress:
            progress(text)

    def reference_loop() -> tuple[int, float]:
        dataset = MultiModalDataset(paths, captions, reference_tokenizer(), image_size)
        n_loop = min(len(paths), max(batch_size * 4, len(paths) // 4))  # the slow one: a quarter is enough
        # One intra-op thread, as in a DataLoader worker: with more, torch's thread pool spins for
        # cores that other processes hold (measured 12 vs 114 img/s on a busy 2-core machine).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            dataset[0]
            start = time.perf_counter()
            for i in range(n_loop):
                dataset[i]
            return n_loop, time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)

    def reference_dataloader() -> tuple[int, float]:
        dataset = MultiModalDataset(paths, captions, reference_tokenizer(), image_size)
        loader = reference_loader(dataset, batch_size, workers)
        return _second_pass(loader, lambda b: b["pixel_values"].shape[0])

    def ours_cpu() -> tuple[int, float]:
        cfg = DataConfig(path=data_path, num_workers=workers, shuffle=False, limit=n_images, image_size=image_size)
        loader = build_loader(cfg, batch_size, load_tokenizer(), device=device, drop_last=False)

        def consume(batch) -> int:
            to_model_input(batch.images, device, torch.float32)
            return len(batch)

        return _second_pass(loader, consume)

    runs = {"reference_loop": reference_loop, "reference_dataloader": reference_dataloader, "ours_cpu": ours_cpu,
            "decode_only": lambda: _decode_only(paths, workers, image_size, True),
            "decode_only_full": lambda: _decode_only(paths, workers, image_size, False)}
    notes = {"reference_loop": "one process, per-sample transform + tokenizer",
             "reference_dataloader": "pin_memory, persistent_workers, float32 out",
             "ours_cpu": "uint8 + draft, batch tokenizer", "decode_only": "read+decode+resize only",
             "decode_only_full": "read+decode+resize only, no draft"}
    chosen = [v for v in runs if v in variants]
    results: dict[str, list[tuple[int, float]]] = {v: [] for v in chosen}
    for repeat in range(repeats):
        # Alternate the order between repeats so that drifting machine load favours no variant.
        for variant in (chosen if repeat % 2 == 0 else chosen[::-1]):
            say(f"{variant} (run {repeat + 1}/{repeats})")
            results[variant].append(runs[variant]())
    rows: list[DataLoadingRow] = []
    for variant in chosen:
        n, seconds = sorted(results[variant], key=lambda r: r[0] / r[1])[len(results[variant]) // 2]  # median
        rows.append(DataLoadingRow(variant, 0 if variant == "reference_loop" else workers,
                                   batch_size if variant in ("reference_dataloader", "ours_cpu") else 1,
                                   n, seconds, n / seconds, normalize_device=device if variant == "ours_cpu" else "",
                                   note=notes[variant], repeats=repeats))
    base = next((r.img_per_s for r in rows if r.variant == "reference_dataloader"), 0.0)
    for row in rows:
        row.vs_reference_dataloader = row.img_per_s / base if base else 0.0
    return rows


def speedup(rows: list[DataLoadingRow], variant: str = "ours_cpu",
            baseline: str = "reference_dataloader") -> float:
    """img/s of ``variant`` over ``baseline`` (0.0 when either is missing)."""
    by = {r.variant: r.img_per_s for r in rows}
    return by[variant] / by[baseline] if by.get(variant) and by.get(baseline) else 0.0
