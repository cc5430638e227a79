"""``synthesize``: a deterministic image-caption dataset on disk, rendered on all cores.

Layout ``files``: ``train.jsonl``, ``val.jsonl`` and ``images/NNNN/NNNNNNN.jpg`` (1,000 per folder).
Layout ``wds``: ``train-000000.tar ...``, ``val-000000.tar ...`` with ``KEY.jpg`` + ``KEY.txt``.
Sample ``i`` is rendered from ``(seed, i)`` alone and files are written in index order with fixed
tar metadata, so the same seed gives the same bytes on any number of processes.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmscale.data.synth_scene import render_scene
from mmscale.errors import ConfigError

SHARD_SIZE = 1000  # samples per tar shard
CHUNK = 16  # samples per task sent to a worker process


@dataclass
class SynthResult:
    out_dir: str
    fmt: str
    n_train: int
    n_val: int
    files: list[str] = field(default_factory=list)  # manifests (files) or shards (wds)
    seconds: float = 0.0
    img_per_s: float = 0.0
    mean_kb: float = 0.0  # mean JPEG size
    workers: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


def _render_chunk(args: tuple[int, int, int]) -> list[tuple[int, bytes, str]]:
    seed, start, stop = args
    return [(i, *render_scene(seed, i)) for i in range(start, stop)]


def _render_and_write_chunk(args: tuple[int, int, int, str]) -> list[tuple[int, int, str]]:
    """Files layout: the worker writes its own JPEGs and returns only (index, nbytes, caption)."""
    seed, start, stop, out_dir = args
    out = []
    for i in range(start, stop):
        data, caption = render_scene(seed, i)
        path = Path(out_dir) / image_relpath(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append((i, len(data), caption))
    return out


def image_relpath(i: int) -> str:
    return f"images/{i // 1000:04d}/{i:07d}.jpg"


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid = size, 0, 0o644, 0, 0
    info.uname = info.gname = ""
    return info


class _ShardWriter:
    def __init__(self, out_dir: Path, split: str):
        self.out_dir, self.split = out_dir, split
        self.tar, self.count, self.files = None, 0, []

    def write(self, i: int, data: bytes, caption: str) -> None:
        if self.tar is None or self.count == SHARD_SIZE:
            self.close()
            path = self.out_dir / f"{self.split}-{len(self.files):06d}.tar"
            self.files.append(str(path))
            self.tar, self.count = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT), 0
        key = f"{i:07d}"
        text = caption.encode("utf-8")
        self.tar.addfile(_tarinfo(f"{key}.jpg", len(data)), io.BytesIO(data))
        self.tar.addfile(_tarinfo(f"{key}.txt", len(text)), io.BytesIO(text))
        self.count += 1

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.tar = None


def synthesize(n: int, out_dir: str | os.PathLike, fmt: str = "files", seed: int = 0, val_frac: float = 0.1,
               workers: int | None = None, progress: bool = True) -> SynthResult:
    """Render ``n`` scenes into ``out_dir``; the last ``round(n * val_frac)`` indices are ``val``."""
    if n < 1:
        raise ConfigError("n", f"must be >= 1, got {n}")
    if fmt not in ("files", "wds"):
        raise ConfigError("format", f"must be 'files' or 'wds', got {fmt!r}")
    if not 0.0 <= val_frac < 1.0:
        raise ConfigError("val_frac", f"must be in [0, 1), got {val_frac}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_val = int(round(n * val_frac))
    n_train = n - n_val
    workers = max(1, workers or os.cpu_count() or 1)
    bounds = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    if fmt == "files":
        tasks, fn = [(seed, a, b, str(out)) for a, b in bounds], _render_and_write_chunk
    else:
        tasks, fn = [(seed, a, b) for a, b in bounds], _render_chunk
    start = time.perf_counter()
    total_bytes = 0
    files: list[str] = []
    progress_bar = _progress(progress, n)
    with progress_bar as bar:
        task = bar.add_task("rendering", total=n) if bar else None
        pool = mp.get_context("fork").Pool(workers) if workers > 1 else None
        results = pool.imap(fn, tasks) if pool else map(fn, tasks)
        try:
            if fmt == "files":
                manifests = {s: open(out / f"{s}.jsonl", "w", encoding="utf-8") for s in ("train", "val")}
                files = [str(out / "train.jsonl"), str(out / "val.jsonl")]
                for chunk in results:  # imap keeps index order: manifests are deterministic
                    for i, nbytes, caption in chunk:
                        split = "train" if i < n_train else "val"
                        manifests[split].write(json.dumps({"image": image_relpath(i), "caption": caption}) + "\n")
                        total_bytes += nbytes
                    if bar:
                        bar.advance(task, len(chunk))
                for f in manifests.values():
                    f.close()
            else:
                writers = {s: _ShardWriter(out, s) for s in ("train", "val")}
                for chunk in results:
                    for i, data, caption in chunk:
                        writers["train" if i < n_train else "val"].write(i, data, caption)
                        total_bytes += len(data)
                    if bar:
                        bar.advance(task, len(chunk))
                for w in writers.values():
                    w.close()
                    files += w.files
        finally:
            if pool:
                pool.close()
                pool.join()
    seconds = time.perf_counter() - start
    return SynthResult(str(out), fmt, n_train, n_val, files, seconds, n / seconds if seconds else 0.0,
                       total_bytes / n / 1000, workers)


def _progress(enabled: bool, n: int):
    import contextlib

    if not enabled:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.speed} img/s"),
                    TimeRemainingColumn(), transient=True)
