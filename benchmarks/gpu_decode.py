"""GPU decode path vs the CPU DataLoader, in one run on the same JPEG files.

Measures images/s of complete input pipelines (decode + resize to S x S + normalize + tokenize,
ending with a float batch on the training device):

  reference_dataloader  the source articles' dataset (PIL + Resize/ToTensor/Normalize + one
                        tokenizer call per sample) in a DataLoader with --workers workers
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

and prints ours_gpu_decode / reference_dataloader (target on one H100 with 16 cores: >= 12,000
img/s and >= 4.5x). Files are written first, so they sit in the page cache: this measures the
pipeline, not the disk.

    PYTHONPATH=src python3 benchmarks/gpu_decode.py --out runs/gpu_decode            (GPU)
    PYTHONPATH=src python3 benchmarks/gpu_decode.py --device cpu --n 64 --batch-size 16 --workers 2 --passes 1 --out runs/x
                                                                                  (CPU smoke: a batch must fit the set)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

WORDS = "a red dog runs on the green grass near two small boats under blue sky with clouds".split()


@dataclass
class Row:
    pipeline: str
    images: int
    seconds: float
    img_per_s: float
    workers: int
    note: str = ""


def _photo(args) -> tuple[str, int]:
    """A photo-like 640x480 JPEG (smooth shapes + sensor noise), about 60 kB at quality 85."""
    from PIL import Image

    i, out_dir, width, height = args
    rng = np.random.default_rng(i)
    low = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(low, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 13, (height, width, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    name = f"img_{i:06d}.jpg"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    (Path(out_dir) / name).write_bytes(buf.getvalue())
    return name, len(buf.getvalue())


def make_dataset(out_dir: Path, n: int, width: int, height: int) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "train.jsonl"
    if manifest.is_file() and sum(1 for _ in open(manifest)) == n:
        sizes = [os.path.getsize(out_dir / json.loads(x)["image"]) for x in open(manifest)]
    else:
        with mp.get_context("fork").Pool(os.cpu_count()) as pool:
            made = pool.map(_photo, [(i, str(out_dir), width, height) for i in range(n)], chunksize=16)
        rng = np.random.default_rng(0)
        with open(manifest, "w") as f:
            for name, _ in made:
                caption = " ".join(rng.choice(WORDS, size=int(rng.integers(6, 20))))
                f.write(json.dumps({"image": name, "caption": caption}) + "\n")
        sizes = [s for _, s in made]
    return {"n": n, "mean_kb": float(np.mean(sizes)) / 1e3, "width": width, "height": height}


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
    import threading

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


def batch_len(batch) -> int:
    return batch["pixel_values"].shape[0] if isinstance(batch, dict) else len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_decode"))
    parser.add_argument("--data", type=Path, default=None, help="image dir (default: OUT/images)")
    parser.add_argument("--n", type=int, default=4096, help="images in the set")
    parser.add_argument("--passes", type=int, default=8,
                        help="passes over the set per pipeline (8: a GPU row times ~3 s; 2 gave windows under 1 s that spread 30%%)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cpu-stand-in", action="store_true",
                        help="without CUDA, run the GPU rows' code on the CPU (the batch decoder's CPU build in "
                             "nvjpeg's place): their plumbing, not their speed")
    parser.add_argument("--rows", default="", help="comma list of rows to run (default: all; the reference "
                        "always runs, as the ratios' base), e.g. ours_gpu_decode,gpu_decode_resize")
    args = parser.parse_args()
    names = [r for r in args.rows.split(",") if r]

    def wanted(name: str) -> bool:
        return not names or name in names

    if args.batch_size > args.n:  # every loader drops the last partial batch: none would come
        parser.error(f"--batch-size {args.batch_size} is larger than --n {args.n}: no batch would be complete")
    device = torch.device(args.device)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from mmscale.data.config import DataConfig
    from mmscale.data.gpu_decode import decode_jpegs, nvjpeg_available, resize_to_square
    from mmscale.bench.pipeline_variants import quiet
    from mmscale.data.loader import build_loader
    from mmscale.data.normalize import to_model_input
    from mmscale.data.readers import read_manifest
    from mmscale.data.reference import MultiModalDataset, reference_loader, reference_tokenizer
    from mmscale.data.tokenizer import load_tokenizer

    data_dir = args.data or args.out / "images"
    dataset_info = make_dataset(data_dir, args.n, args.width, args.height)
    index = read_manifest(data_dir / "train.jsonl")
    total = min(len(index), args.n) * args.passes
    rows: list[Row] = []
    S, B, W = args.image_size, args.batch_size, args.workers

    def endless(make):
        while True:
            yield from make()

    # 1. the reference design in a DataLoader
    ref = MultiModalDataset([index.path(i) for i in range(len(index))], [index.caption(i) for i in range(len(index))],
                            reference_tokenizer(), S, 128)
    ref_loader = reference_loader(ref, B, W)
    batches = endless(lambda: ref_loader)
    rows.append(time_loader("reference_dataloader", batches, total, device,
                            lambda b: b["pixel_values"].to(device, non_blocking=True), W))
    quiet(batches, ref_loader)  # its workers would go on decoding while the next row is timed

    tok = load_tokenizer()
    base = DataConfig(path=str(data_dir / "train.jsonl"), image_size=S, num_workers=W, max_text_len=128)

    def ours(name, finish, decode, raw_only=False, per_epoch=False, decode_threads=2) -> Row:
        """Time one of our loaders, then stop it: its generator (a decode thread) and its workers.
        ``per_epoch``: iterate the loader once per pass instead of one endless iteration."""
        import dataclasses

        loader = build_loader(dataclasses.replace(base, decode=decode), B, tok, device=device,
                              decode=decode, endless=not per_epoch, decode_threads=decode_threads)
        batches = endless(lambda: loader.dataloader if raw_only else loader)
        try:
            row = time_loader(name, batches, total, device, finish, W)
        finally:
            quiet(batches, loader)
        decoder = loader.gpu_decoder
        if decoder is not None and decoder.busy_s > 0 and not raw_only:
            # the decoder's own rate while it ran (warm-up and read-ahead included): near the row's
            # rate = decode-bound; far above it = the decoder waits for raw batches
            row.note = (f"decoder {decoder.images / decoder.busy_s:.0f} img/s while busy, "
                        f"{decoder.busy_cpu_s / decoder.busy_s:.2f} CPU cores")
        return row

    # 2. ours, CPU decode
    for name in ("ours_cpu_decode", "ours_cpu_decode_per_epoch"):
        if wanted(name):
            rows.append(ours(name, lambda b: to_model_input(b.images, device), "cpu",
                             per_epoch=name.endswith("_per_epoch")))
    # 3. ours, GPU decode, and its variants; then ceilings on bytes in memory
    if device.type == "cuda":
        ok, why = nvjpeg_available(device)
    else:
        ok, why = (True, "") if args.cpu_stand_in else (False, "device is not CUDA (--cpu-stand-in runs them on CPU)")
    normalize = lambda b: to_model_input(b.images, device)  # noqa: E731

    @contextlib.contextmanager
    def switch_interval(seconds):
        # the reading and decoding threads share the GIL: a thread that gives it up for a torch call
        # can wait out the other's 5 ms switch interval to get it back (decode_gil.py)
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

    loader_rows = {  # name -> (finish, keyword options of ours(), context)
        "ours_gpu_decode": (normalize, {}, contextlib.nullcontext),
        "ours_gpu_decode_per_epoch": (normalize, {"per_epoch": True}, contextlib.nullcontext),
        "ours_raw_only_per_epoch": (None, {"per_epoch": True}, contextlib.nullcontext),
        "ours_gpu_decode_1thread": (normalize, {"decode_threads": 1}, contextlib.nullcontext),
        "ours_gpu_decode_inline": (normalize, {"decode_threads": 0}, contextlib.nullcontext),
        "ours_gpu_decode_switch0.5ms": (normalize, {}, lambda: switch_interval(0.0005)),
        "ours_raw_only": (None, {}, contextlib.nullcontext),
        "ours_gpu_decode_fs_sharing": (normalize, {}, file_system_sharing),
        "ours_raw_only_fs_sharing": (None, {}, file_system_sharing),
    }
    ceilings = [(f"gpu_decode_{what}{threads}", what, threads)
                for what in ("only", "resize") for threads in ("", "_t1", "_t2")]
    gpu_rows = list(loader_rows) + [name for name, *_ in ceilings]
    if not ok:
        rows += [Row(name, 0, 0.0, 0.0, W, note=f"skipped: {why}") for name in gpu_rows if wanted(name)]
    else:
        for name, (finish, options, context) in loader_rows.items():
            if not wanted(name):
                continue
            try:
                with context():
                    raw_only = finish is None
                    rows.append(ours(name, finish or (lambda b: None), "gpu", raw_only=raw_only, **options))
            except Exception as exc:  # a failed row is a finding, not the end of the other rows
                rows.append(Row(name, 0, 0.0, 0.0, W, note=f"failed: {type(exc).__name__}: {exc}"))
        blobs = [torch.frombuffer(bytearray(open(index.path(i), "rb").read()), dtype=torch.uint8)
                 for i in range(min(len(index), args.n))]
        chunks = [blobs[k:k + B] for k in range(0, len(blobs) - B + 1, B)]
        for name, what, threads in ceilings:
            if not wanted(name):
                continue
            decode = lambda c: decode_jpegs(c, device)  # noqa: E731
            if what == "only":
                fn = decode
            else:
                fn = lambda c, decode=decode: to_model_input(resize_to_square(decode(c), S))  # noqa: E731
            try:  # a decoder that fails at its first batch is a finding, not the end of the run
                if threads:
                    rows.append(time_threads(name, fn, chunks, int(threads[2:]), total, device))
                else:
                    rows.append(time_loader(name, endless(lambda: chunks), total, device, fn, 0))
            except Exception as exc:
                rows.append(Row(name, 0, 0.0, 0.0, 0, note=f"failed: {type(exc).__name__}: {exc}"))

    by = {r.pipeline: r for r in rows}
    ref_rate = by["reference_dataloader"].img_per_s

    def rate(name: str) -> float:
        return by[name].img_per_s if name in by else 0.0

    summary = {
        "dataset": dataset_info, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_count": os.cpu_count(), "batch_size": B, "image_size": S, "workers": W,
        "torch": torch.__version__,
        "gpu_vs_reference": rate("ours_gpu_decode") / ref_rate if rate("ours_gpu_decode") else None,
        "cpu_vs_reference": rate("ours_cpu_decode") / ref_rate if rate("ours_cpu_decode") else None,
        "endless_vs_per_epoch": {kind: rate(f"ours_{kind}") / rate(f"ours_{kind}_per_epoch")
                                 for kind in ("cpu_decode", "gpu_decode", "raw_only")
                                 if rate(f"ours_{kind}") and rate(f"ours_{kind}_per_epoch")},
        "threads_vs_inline": (rate("ours_gpu_decode") / rate("ours_gpu_decode_inline")
                              if rate("ours_gpu_decode_inline") and rate("ours_gpu_decode") else None),
        "target": ">= 12000 img/s and >= 4.5x reference_dataloader (one H100, 16 cores)",
        "rows": [asdict(r) for r in rows],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_decode.json").write_text(json.dumps(summary, indent=2))
    print(f"{dataset_info['n']} JPEGs {args.width}x{args.height}, mean {dataset_info['mean_kb']:.1f} kB; "
          f"batch {B}, {W} workers, {summary['device_name']}, {os.cpu_count()} CPUs")
    print(f"{'pipeline':<28} {'images':>8} {'seconds':>8} {'img/s':>10} {'vs reference':>13}  note")
    for r in rows:
        ratio = f"{r.img_per_s / ref_rate:.2f}x" if r.img_per_s else "-"
        print(f"{r.pipeline:<28} {r.images:>8} {r.seconds:>8.2f} {r.img_per_s:>10.1f} {ratio:>13}  {r.note}")
    if summary["threads_vs_inline"]:
        print(f"decode threads (2) / inline: {summary['threads_vs_inline']:.2f}x")
    for kind, ratio in summary["endless_vs_per_epoch"].items():
        print(f"ours_{kind}: one endless iteration / once per pass: {ratio:.2f}x")


if __name__ == "__main__":
    main()
