"""GPU decode path vs the CPU DataLoader, in one run on the same JPEG files.

Measures images/s of complete input pipelines (decode + resize to S x S + normalize + tokenize,
ending with a float batch on the training device):

  reference_dataloader  the source articles' dataset (PIL + Resize/ToTensor/Normalize + one
                        tokenizer call per sample) in a DataLoader with ``workers`` workers
  ours_cpu_decode       mmscale's loader, decode=cpu (DCT-scaled PIL decode, uint8, batch
                        tokenization), normalize on the device
  ours_*_per_epoch      ours_cpu_decode / ours_gpu_decode / ours_raw_only re-iterated once per pass,
                        as before training streamed across epochs: the workers sit idle from the
                        end of each pass until the next pass's first batch is asked for (every
                        ours_* row without the suffix reads passes as one endless iteration)
  ours_gpu_decode       mmscale's loader, decode=gpu: workers read bytes + tokenize, nvjpeg batch
                        decode + antialiased resize + normalize on the GPU, side-stream prefetch;
                        one thread reads raw batches, another decodes (build_loader's decode_threads=2)
                        (note: the decoder's own img/s while busy, and its thread's CPU use)
  ours_gpu_decode_1thread  the same with one thread that reads and decodes (decode_threads=1)
  ours_gpu_decode_inline  the same decoding between batches in the consumer's thread (decode_threads=0)
  ours_gpu_decode_switch0.5ms  ours_gpu_decode with Python's thread switch interval at 0.5 ms
                        instead of 5 ms (do the reading and decoding threads wait for the GIL?)
  ours_raw_only         ceiling of the workers: the same DataLoader's raw batches (bytes + tokens),
                        nothing decoded
  ours_*_fs_sharing     ours_gpu_decode and ours_raw_only with workers handing tensors over as
                        named shared-memory files (torch's file_system strategy) instead of file
                        descriptors fetched over a socket
  gpu_decode_only       ceiling: nvjpeg batch decode of bytes already in memory
  gpu_decode_resize     ceiling: decode + resize + normalize of bytes already in memory
  gpu_decode_*_tN       the two ceilings from N threads at once, each on its own stream, with the
                        process's CPU use (torchvision's decoder is one lock: does a second thread
                        that resizes while the other decodes add throughput?)

Files are written first, so they sit in the page cache: this measures the pipeline, not the disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from mmscale.bench.decode.photos import make_dataset
from mmscale.bench.decode.timing import Row, time_loader, time_threads
from mmscale.bench.pipeline.variants import quiet
from mmscale.data.config import DataConfig
from mmscale.data.gpu_decode import decode_jpegs, nvjpeg_available, resize_to_square
from mmscale.data.loader import build_loader
from mmscale.data.normalize import to_model_input
from mmscale.data.readers import read_manifest
from mmscale.data.reference import MultiModalDataset, reference_loader, reference_tokenizer
from mmscale.data.tokenizer import load_tokenizer
from mmscale.errors import ConfigError

RESULTS_FILE = "gpu_decode.json"
TARGET = ">= 12000 img/s and >= 4.5x reference_dataloader (one H100, 16 cores)"


@contextlib.contextmanager
def switch_interval(seconds: float):
    # the reading and decoding threads share the GIL: a thread that gives it up for a torch call
    # can wait out the other's 5 ms switch interval to get it back (bench/decode/gil.py)
    default = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(default)


@contextlib.contextmanager
def file_system_sharing():
    # workers hand tensors over as file descriptors by default: the main process fetches each
    # one from the worker over a socket, several round trips that each take the GIL back
    # beside the decode thread; the file_system strategy names a shared-memory file instead
    default = torch.multiprocessing.get_sharing_strategy()
    torch.multiprocessing.set_sharing_strategy("file_system")  # forked workers inherit it
    try:
        yield
    finally:
        torch.multiprocessing.set_sharing_strategy(default)


CPU_ROWS = ("ours_cpu_decode", "ours_cpu_decode_per_epoch")
# decode=gpu rows: name -> (normalize the batch (False: raw batches only), options of time_ours, context)
LOADER_ROWS = {
    "ours_gpu_decode": (True, {}, contextlib.nullcontext),
    "ours_gpu_decode_per_epoch": (True, {"per_epoch": True}, contextlib.nullcontext),
    "ours_raw_only_per_epoch": (False, {"per_epoch": True}, contextlib.nullcontext),
    "ours_gpu_decode_1thread": (True, {"decode_threads": 1}, contextlib.nullcontext),
    "ours_gpu_decode_inline": (True, {"decode_threads": 0}, contextlib.nullcontext),
    "ours_gpu_decode_switch0.5ms": (True, {}, lambda: switch_interval(0.0005)),
    "ours_raw_only": (False, {}, contextlib.nullcontext),
    "ours_gpu_decode_fs_sharing": (True, {}, file_system_sharing),
    "ours_raw_only_fs_sharing": (False, {}, file_system_sharing),
}
CEILINGS = [(f"gpu_decode_{what}{threads}", what, threads)
            for what in ("only", "resize") for threads in ("", "_t1", "_t2")]
ROWS = ("reference_dataloader", *CPU_ROWS, *LOADER_ROWS, *(name for name, *_ in CEILINGS))


@dataclass
class GpuDecodeConfig:
    out: str = "runs/gpu_decode"
    data: str | None = None  # image dir (None: OUT/images)
    n: int = 4096  # images in the set
    # passes over the set per pipeline (8: a GPU row times ~3 s; 2 gave windows under 1 s that spread 30%)
    passes: int = 8
    batch_size: int = 256
    workers: int = field(default_factory=lambda: min(16, os.cpu_count() or 1))
    image_size: int = 224
    width: int = 640
    height: int = 480
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    cpu_stand_in: bool = False  # without CUDA, the GPU rows' code on the CPU: their plumbing, not their speed
    rows: list[str] = field(default_factory=list)  # rows to run (empty: all; the reference always runs)


class Setup(NamedTuple):
    """What every loader row shares."""
    base: DataConfig
    batch_size: int
    tokenizer: object
    device: torch.device
    total: int  # images per row
    workers: int


def endless(make):
    while True:
        yield from make()


def time_ours(setup: Setup, name: str, finish, decode: str, raw_only=False, per_epoch=False, decode_threads=2) -> Row:
    """Time one of our loaders, then stop it: its generator (a decode thread) and its workers.
    ``per_epoch``: iterate the loader once per pass instead of one endless iteration."""
    loader = build_loader(dataclasses.replace(setup.base, decode=decode), setup.batch_size, setup.tokenizer,
                          device=setup.device, decode=decode, endless=not per_epoch, decode_threads=decode_threads)
    batches = endless(lambda: loader.dataloader if raw_only else loader)
    try:
        row = time_loader(name, batches, setup.total, setup.device, finish, setup.workers)
    finally:
        quiet(batches, loader)
    decoder = loader.gpu_decoder
    if decoder is not None and decoder.busy_s > 0 and not raw_only:
        # the decoder's own rate while it ran (warm-up and read-ahead included): near the row's
        # rate = decode-bound; far above it = the decoder waits for raw batches
        row.note = (f"decoder {decoder.images / decoder.busy_s:.0f} img/s while busy, "
                    f"{decoder.busy_cpu_s / decoder.busy_s:.2f} CPU cores")
    return row


def reference_row(index, setup: Setup, image_size: int) -> Row:
    """The reference design in a DataLoader: the ratios' base."""
    ref = MultiModalDataset([index.path(i) for i in range(len(index))], [index.caption(i) for i in range(len(index))],
                            reference_tokenizer(), image_size, 128)
    ref_loader = reference_loader(ref, setup.batch_size, setup.workers)
    batches = endless(lambda: ref_loader)
    row = time_loader("reference_dataloader", batches, setup.total, setup.device,
                      lambda b: b["pixel_values"].to(setup.device, non_blocking=True), setup.workers)
    quiet(batches, ref_loader)  # its workers would go on decoding while the next row is timed
    return row


def gpu_loader_rows(setup: Setup, wanted) -> list[Row]:
    def normalize(b):
        return to_model_input(b.images, setup.device)

    rows = []
    for name, (normalized, options, context) in LOADER_ROWS.items():
        if not wanted(name):
            continue
        try:
            with context():
                rows.append(time_ours(setup, name, normalize if normalized else (lambda b: None), "gpu",
                                      raw_only=not normalized, **options))
        except Exception as exc:  # a failed row is a finding, not the end of the other rows
            rows.append(Row(name, 0, 0.0, 0.0, setup.workers, note=f"failed: {type(exc).__name__}: {exc}"))
    return rows


def ceiling_rows(index, n: int, setup: Setup, image_size: int, wanted) -> list[Row]:
    """nvjpeg batch decode (and resize) of bytes already in memory, from one thread or several."""
    blobs = [torch.frombuffer(bytearray(open(index.path(i), "rb").read()), dtype=torch.uint8)
             for i in range(min(len(index), n))]
    B, device = setup.batch_size, setup.device
    chunks = [blobs[k:k + B] for k in range(0, len(blobs) - B + 1, B)]

    def decode(chunk):
        return decode_jpegs(chunk, device)

    def decode_resize(chunk):
        return to_model_input(resize_to_square(decode(chunk), image_size))

    rows = []
    for name, what, threads in CEILINGS:
        if not wanted(name):
            continue
        fn = decode if what == "only" else decode_resize
        try:  # a decoder that fails at its first batch is a finding, not the end of the run
            if threads:
                rows.append(time_threads(name, fn, chunks, int(threads[2:]), setup.total, device))
            else:
                rows.append(time_loader(name, endless(lambda: chunks), setup.total, device, fn, 0))
        except Exception as exc:
            rows.append(Row(name, 0, 0.0, 0.0, 0, note=f"failed: {type(exc).__name__}: {exc}"))
    return rows


def bench_gpu_decode(cfg: GpuDecodeConfig) -> dict:
    """Every row of ``cfg.rows`` (all by default) on one JPEG set: the summary with the rows and the
    ratios to the reference, also written to OUT/gpu_decode.json."""
    if cfg.batch_size > cfg.n:  # every loader drops the last partial batch: none would come
        raise ConfigError("--batch-size", f"{cfg.batch_size} is larger than --n {cfg.n}: no batch would be complete")

    def wanted(name: str) -> bool:
        return not cfg.rows or name in cfg.rows

    device = torch.device(cfg.device)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    data_dir = Path(cfg.data) if cfg.data else Path(cfg.out) / "images"
    dataset_info = make_dataset(data_dir, cfg.n, cfg.width, cfg.height)
    index = read_manifest(data_dir / "train.jsonl")
    base = DataConfig(path=str(data_dir / "train.jsonl"), image_size=cfg.image_size, num_workers=cfg.workers,
                      max_text_len=128)
    setup = Setup(base, cfg.batch_size, load_tokenizer(), device, min(len(index), cfg.n) * cfg.passes, cfg.workers)
    rows = [reference_row(index, setup, cfg.image_size)]
    for name in CPU_ROWS:
        if wanted(name):
            rows.append(time_ours(setup, name, lambda b: to_model_input(b.images, device), "cpu",
                                  per_epoch=name.endswith("_per_epoch")))
    if device.type == "cuda":
        ok, why = nvjpeg_available(device)
    else:
        ok, why = (True, "") if cfg.cpu_stand_in else (False, "device is not CUDA (--cpu-stand-in runs them on CPU)")
    if not ok:
        gpu_rows = [*LOADER_ROWS, *(name for name, *_ in CEILINGS)]
        rows += [Row(name, 0, 0.0, 0.0, cfg.workers, note=f"skipped: {why}") for name in gpu_rows if wanted(name)]
    else:
        rows += gpu_loader_rows(setup, wanted)
        rows += ceiling_rows(index, cfg.n, setup, cfg.image_size, wanted)
    summary = summarize(rows, dataset_info, device, cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    (Path(cfg.out) / RESULTS_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def summarize(rows: list[Row], dataset_info: dict, device: torch.device, cfg: GpuDecodeConfig) -> dict:
    """The run's conditions, its rows, and the ratios: ours over the reference, one endless iteration
    over one per pass, the decode threads over decoding inline."""
    by = {r.pipeline: r for r in rows}
    ref_rate = by["reference_dataloader"].img_per_s

    def rate(name: str) -> float:
        return by[name].img_per_s if name in by else 0.0

    return {
        "dataset": dataset_info, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_count": os.cpu_count(), "batch_size": cfg.batch_size, "image_size": cfg.image_size,
        "workers": cfg.workers, "torch": torch.__version__,
        "gpu_vs_reference": rate("ours_gpu_decode") / ref_rate if rate("ours_gpu_decode") else None,
        "cpu_vs_reference": rate("ours_cpu_decode") / ref_rate if rate("ours_cpu_decode") else None,
        "endless_vs_per_epoch": {kind: rate(f"ours_{kind}") / rate(f"ours_{kind}_per_epoch")
                                 for kind in ("cpu_decode", "gpu_decode", "raw_only")
                                 if rate(f"ours_{kind}") and rate(f"ours_{kind}_per_epoch")},
        "threads_vs_inline": (rate("ours_gpu_decode") / rate("ours_gpu_decode_inline")
                              if rate("ours_gpu_decode_inline") and rate("ours_gpu_decode") else None),
        "target": TARGET,
        "rows": [asdict(r) for r in rows],
    }
