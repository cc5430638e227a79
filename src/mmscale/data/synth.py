"""``synthesize``: a deterministic image-caption dataset on disk, rendered on all cores.

Layout ``files``: ``train.jsonl``, ``val.jsonl`` and ``images/NNNN/NNNNNNN.jpg`` (1,000 per folder).
Layout ``wds``: ``train-000000.tar ...``, ``val-000000.tar ...`` with ``KEY.jpg`` + ``KEY.txt``.
Sample ``i`` is rendered from ``(seed, i)`` alone and files are written in index order with fixed
tar metadata, so the same seed gives the same bytes on any number of processes.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import re
import signal
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mmscale.data.synth_scene import render_scene
from mmscale.errors import ConfigError
from mmscale.strict_json import dumps

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


_MANIFEST_RE = re.compile(r"(train|val)\.jsonl")
_SHARD_RE = re.compile(r"(train|val)-\d{6}\.tar")
_IMAGE_DIR_RE = re.compile(r"\d{4}")
_IMAGE_RE = re.compile(r"\d{7}\.jpg")


def previous_dataset(out: Path) -> list[Path]:
    """The files an earlier ``synthesize`` wrote into ``out``, in either layout: ``train.jsonl``,
    ``val.jsonl``, ``images/NNNN/NNNNNNN.jpg`` and ``{train,val}-NNNNNN.tar``. Nothing else."""
    if not out.is_dir():
        return []
    found = [p for p in out.iterdir()
             if p.is_file() and (_MANIFEST_RE.fullmatch(p.name) or _SHARD_RE.fullmatch(p.name))]
    n_top = len(found)
    images = out / "images"
    if images.is_dir():
        for folder in sorted(images.iterdir()):
            if folder.is_dir() and _IMAGE_DIR_RE.fullmatch(folder.name):
                found += sorted(p for p in folder.iterdir() if p.is_file() and _IMAGE_RE.fullmatch(p.name))
    return sorted(found[:n_top]) + found[n_top:]  # manifests and shards first, then images


def _remove_previous(out: Path, files: list[Path]) -> None:
    """Delete ``files`` (from ``previous_dataset``), then the image folders they leave empty."""
    for path in files:
        path.unlink()
    images = out / "images"
    if images.is_dir():
        for folder in images.iterdir():
            if folder.is_dir() and _IMAGE_DIR_RE.fullmatch(folder.name) and not any(folder.iterdir()):
                folder.rmdir()
        if not any(images.iterdir()):
            images.rmdir()


def synthesize(n: int, out_dir: str | os.PathLike, fmt: str = "files", seed: int = 0, val_frac: float = 0.1,
               workers: int | None = None, progress: bool = True, overwrite: bool = True) -> SynthResult:
    """Render ``n`` scenes into ``out_dir``; the last ``round(n * val_frac)`` indices are ``val``.

    ``workers``: processes that render (None: one per core; 1: render in this process). A dataset
    already in ``out_dir`` (the files ``previous_dataset`` lists) is never mixed with the new one:
    ``overwrite`` removes those files first (other files in ``out_dir`` are left alone); with
    ``overwrite=False`` it is a ``ConfigError`` (the CLI's default, ``--overwrite`` to replace).
    """
    if n < 1:
        raise ConfigError("n", f"must be >= 1, got {n}")
    if fmt not in ("files", "wds"):
        raise ConfigError("format", f"must be 'files' or 'wds', got {fmt!r}")
    if not 0.0 <= val_frac < 1.0:
        raise ConfigError("val_frac", f"must be in [0, 1), got {val_frac}")
    if seed < 0:
        raise ConfigError("seed", f"must be >= 0, got {seed}")
    if workers is not None and workers < 1:
        raise ConfigError("workers", f"must be >= 1 (1 renders in this process; leave it out for one per core), "
                                     f"got {workers}")
    if not str(out_dir).strip():  # Path("") is the current directory: never write there by accident
        raise ConfigError("out", "is empty: give a directory (it is created)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{out} exists and is not a directory: give a directory (it is created)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("out", f"cannot create directory {out} ({exc.strerror or exc})") from None
    previous = previous_dataset(out)
    if previous:
        if not overwrite:
            raise ConfigError("out", f"{out} already holds a dataset ({len(previous)} files, e.g. "
                                     f"{previous[0].relative_to(out)}): pass --overwrite to replace it, "
                                     "or choose another --out")
        _remove_previous(out, previous)
    n_val = int(round(n * val_frac))
    n_train = n - n_val
    bounds = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    # processes that really run: never more than there are chunks to render
    workers = min(workers or os.cpu_count() or 1, len(bounds))
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
        # Ctrl-C reaches the whole process group: the workers leave it to this process, which
        # stops them at once (terminate) instead of letting them render every queued chunk
        pool = mp.get_context("fork").Pool(workers, initializer=signal.signal,
                                            initargs=(signal.SIGINT, signal.SIG_IGN)) if workers > 1 else None
        results = pool.imap(fn, tasks) if pool else map(fn, tasks)
        try:
            if fmt == "files":
                manifests = {s: open(out / f"{s}.jsonl", "w", encoding="utf-8") for s in ("train", "val")}
                files = [str(out / "train.jsonl"), str(out / "val.jsonl")]
                for chunk in results:  # imap keeps index order: manifests are deterministic
                    for i, nbytes, caption in chunk:
                        split = "train" if i < n_train else "val"
                        manifests[split].write(dumps({"image": image_relpath(i), "caption": caption}) + "\n")
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
        except BaseException:
            if pool:
                pool.terminate()
            raise
        finally:
            if pool:
                pool.close()
                pool.join()
    seconds = time.perf_counter() - start
    return SynthResult(str(out), fmt, n_train, n_val, files, seconds, n / seconds if seconds else 0.0,
                       total_bytes / n / 1000, workers)


def _progress(enabled: bool, n: int):
    if not enabled:
        return contextlib.nullcontext(None)

    return Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.speed} img/s"),
                    TimeRemainingColumn(), transient=True)
