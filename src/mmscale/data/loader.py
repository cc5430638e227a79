"""``build_loader``: DataLoader with workers, pinned memory (on CUDA), persistent workers and prefetch,
yielding ``Batch`` (uint8 images, batch-tokenized captions, per-batch skip counts).

Resume: ``loader.state_dict()`` is ``{"epoch", "sample_offset"}``; a loader built with the same
config and ``start_sample=sample_offset, epoch=epoch`` continues with the very next sample of the
same permutation (map-style manifests; WebDataset shards restart their epoch). That also lets
training switch input paths mid-epoch (``decode=auto`` probes both): close one loader, build the
other at the same position with ``reuse=`` the first, so the manifest is indexed once.

``endless=True`` (training's stream): one iteration runs epoch after epoch (``EpochBatches``), so
the workers start the next epoch's batches while this one's last are still being used. The
batches are the same as re-iterating once per epoch; the wait at each epoch's start is gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from mmscale.data.collate import Collator, RawCollator
from mmscale.data.config import DataConfig
from mmscale.data.dataset import IndexedDataset, RawIndexedDataset
from mmscale.data.gpu_decode import GpuDecoder, resolve_decode
from mmscale.data.gpu_prefetch import GpuDecodeLoader
from mmscale.data.index import ManifestIndex
from mmscale.data.readers import read_manifest, resolve_source
from mmscale.data.sampler import EpochBatches, ResumableSampler
from mmscale.data.skips import SkipCounter
from mmscale.data.wds import WdsDataset
from mmscale.errors import ConfigError, DataError

WDS_SHUFFLE_BUFFER = 1000  # samples held per worker for WebDataset shuffling
DECODE_THREADS = 2  # GPU decode: one thread reads raw batches, one decodes (BENCHMARKS.md, decode_threads)


@dataclass
class OpenedDataset:
    """A dataset ready for a DataLoader, plus what indexing it found."""

    dataset: torch.utils.data.Dataset
    fmt: str  # jsonl | csv | coco | wds
    index: ManifestIndex | None  # None for streamed WebDataset shards
    index_skips: SkipCounter = field(default_factory=SkipCounter)  # bad manifest rows (file:line)


def open_dataset(cfg: DataConfig, split: str = "train", raw: bool = False,
                 reuse: OpenedDataset | None = None) -> OpenedDataset:
    """Resolve ``cfg.path`` for ``split`` and build the dataset (``raw``: for GPU decode).

    ``reuse``: an opened dataset of the same split whose manifest index is shared (no re-read).
    """
    kind = RawIndexedDataset if raw else IndexedDataset
    if reuse is not None and reuse.index is not None:
        return OpenedDataset(kind(reuse.index, cfg.image_size, cfg.max_image_pixels), reuse.fmt, reuse.index,
                             reuse.index_skips)
    source = resolve_source(cfg.path, cfg.format, split)
    if source.fmt == "wds":
        if raw:
            raise ConfigError("data.decode", "gpu decode reads manifests (jsonl/csv/coco); use decode=cpu for shards")
        dataset = WdsDataset(source.files, cfg.image_size, cfg.max_image_pixels,
                             shuffle_buffer=WDS_SHUFFLE_BUFFER if cfg.shuffle else 0, seed=cfg.seed, limit=cfg.limit)
        return OpenedDataset(dataset, "wds", None)
    counter = SkipCounter()
    index = read_manifest(source.files[0], source.fmt, cfg.image_root, counter, cfg.strict, cfg.limit, split)
    return OpenedDataset(kind(index, cfg.image_size, cfg.max_image_pixels), source.fmt, index, counter)


def _worker_init(_: int) -> None:
    # Workers are many processes on few cores: one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)


class Loader:
    """Iterable of ``Batch``; tracks its position (epoch, samples read) for checkpoints."""

    def __init__(self, cfg: DataConfig, opened: OpenedDataset, dataloader: DataLoader,
                 sampler: ResumableSampler | None, batch_size: int, epoch: int, start_sample: int,
                 gpu_decoder=None, epochs: EpochBatches | None = None, decode_threads: int = DECODE_THREADS):
        self.cfg, self.opened, self.dataloader, self.sampler = cfg, opened, dataloader, sampler
        self.epochs = epochs  # set: one iteration never ends (see ``build_loader``'s ``endless``)
        self.batch_size, self.epoch, self.sample_offset = batch_size, epoch, start_sample
        self.gpu_decoder, self.decode_threads = gpu_decoder, decode_threads
        self.decode = "cpu" if gpu_decoder is None else "gpu"  # the input path this loader runs
        self.skips = SkipCounter()  # everything read through this loader, all epochs
        if sampler is not None:
            sampler.set_epoch(epoch, start_sample)

    @property
    def index_skips(self) -> SkipCounter:
        """Manifest rows dropped while indexing (malformed lines, missing fields, empty captions)."""
        return self.opened.index_skips

    def __len__(self) -> int:
        """Batches left in the current epoch (map-style only)."""
        return len(self.dataloader)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "sample_offset": self.sample_offset}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.sample_offset = int(state["epoch"]), int(state["sample_offset"])
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch, self.sample_offset)

    def close(self) -> None:
        """Stop the worker processes now (see ``shutdown_workers``). Close any generator over this
        loader first: with ``decode=gpu`` its threads may be reading the DataLoader."""
        shutdown_workers(self.dataloader)

    def _batches(self):
        if self.gpu_decoder is None:
            yield from self.dataloader
            return

        yield from GpuDecodeLoader(self.dataloader, self.gpu_decoder, prefetch=2, threads=self.decode_threads)

    def __iter__(self):
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch, self.sample_offset)
        elif hasattr(self.opened.dataset, "set_epoch"):
            self.opened.dataset.set_epoch(self.epoch)
        if self.epochs is not None:
            yield from self._endless()
            return
        for batch in self._batches():
            self._count(batch)
            yield batch
        self.epoch, self.sample_offset = self.epoch + 1, 0

    def _count(self, batch) -> None:
        self.sample_offset += batch.skips.read
        self.skips.merge(batch.skips)
        if self.cfg.strict and batch.skips.skipped:
            raise batch.skips.examples[0].to_error()

    def _endless(self):
        """Epoch after epoch in one iteration; the position rolls over where ``EpochBatches``
        ends each epoch, so ``state_dict`` names the next batch's epoch and offset."""
        end = self.epochs.epoch_end(self.sample_offset)
        for batch in self._batches():
            self._count(batch)
            if self.sample_offset >= end:
                self.epoch, self.sample_offset = self.epoch + 1, 0
                end = self.epochs.epoch_end(0)
            yield batch


def shutdown_workers(dataloader: DataLoader) -> None:
    """Stop a DataLoader's persistent workers now. They outlive an abandoned iteration and keep
    decoding up to ``num_workers * prefetch_factor`` batches nobody reads: a switched-away input
    path, or the previous row of a benchmark, must go quiet before the next is timed."""
    iterator = getattr(dataloader, "_iterator", None)  # where DataLoader keeps persistent workers
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    dataloader._iterator = None


def build_loader(data_cfg: DataConfig, batch_size: int, tokenizer, device: torch.device | str | None = None,
                 drop_last: bool = True, split: str = "train", start_sample: int = 0, epoch: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: bool | None = None, decode: str | None = None,
                 reuse: Loader | None = None, endless: bool = False,
                 decode_threads: int = DECODE_THREADS) -> Loader:
    """A ``Loader`` over ``data_cfg.path``'s ``split``.

    ``device``: where training runs; decides pinning and (``decode=auto|gpu``) GPU decode.
    ``decode``: ``cpu`` or ``gpu`` to build that input path as is, instead of resolving
    ``data_cfg.decode`` (training's ``decode=auto`` probe builds each path; ``gpu`` on a CPU device
    runs the same decode code synchronously, for tests). ``reuse``: a loader over the same split
    whose manifest index this one shares.
    ``start_sample``/``epoch``: resume position (see ``Loader.state_dict``). ``rank``/``world_size``:
    this process's share under data parallelism. ``shuffle`` overrides ``data_cfg.shuffle``
    (evaluation passes False). ``endless``: one iteration runs epoch after epoch without a pause
    between them (indexed manifests; WebDataset shards still end each epoch's iteration).
    ``decode_threads``: GPU decode's background threads (2: read + decode, 1: both, 0: between steps).
    """
    data_cfg.validate()
    if batch_size < 1:
        raise ConfigError("train.batch_size", f"must be >= 1, got {batch_size}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers parallelize; avoid fork warnings
    device = torch.device(device) if device is not None else torch.device("cpu")
    mode = resolve_mode(data_cfg, device, split) if decode is None else decode
    if mode not in ("cpu", "gpu"):
        raise ConfigError("data.decode", f"a built input path is cpu or gpu, got {mode!r}")
    opened = open_dataset(data_cfg, split, raw=mode == "gpu", reuse=reuse.opened if reuse is not None else None)
    if opened.index is not None and len(opened.index) == 0:
        raise no_usable_sample(opened)
    shuffle = data_cfg.shuffle if shuffle is None else shuffle
    collate_cls = RawCollator if mode == "gpu" else Collator
    collate = collate_cls(tokenizer, data_cfg.max_text_len, data_cfg.image_size)
    workers = data_cfg.num_workers
    common = dict(collate_fn=collate, num_workers=workers, worker_init_fn=_worker_init if workers else None,
                  pin_memory=device.type == "cuda" and mode == "cpu",
                  persistent_workers=workers > 0,
                  prefetch_factor=data_cfg.prefetch_factor if workers > 0 else None)
    sampler = epochs = None
    if opened.index is not None:
        sampler = ResumableSampler(len(opened.dataset), data_cfg.seed, shuffle, start_sample, rank, world_size)
        if endless:
            epochs = EpochBatches(sampler, batch_size, drop_last)
            dataloader = DataLoader(opened.dataset, batch_sampler=epochs, **common)
        else:
            dataloader = DataLoader(opened.dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                                    **common)
    else:
        dataloader = DataLoader(opened.dataset, batch_size=batch_size, drop_last=drop_last, **common)
    gpu_decoder = None
    if mode == "gpu":
        gpu_decoder = GpuDecoder(data_cfg.image_size, data_cfg.max_image_pixels, device)
    return Loader(data_cfg, opened, dataloader, sampler, batch_size, epoch, start_sample, gpu_decoder, epochs,
                  decode_threads)


def no_usable_sample(opened: OpenedDataset) -> DataError:
    """The error for a manifest none of whose rows can be used, counting its skips by reason."""
    skips = opened.index_skips
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(skips.by_reason.items()))
    detail = f"all {skips.skipped} rows skipped ({reasons})" if skips.skipped else "it holds no rows"
    return DataError(opened.index.files[0], f"no usable sample: {detail}; `mmscale data check` lists them")


def resolve_mode(data_cfg: DataConfig, device: torch.device, split: str = "train") -> str:
    """``data.decode`` -> the input path to build (``cpu`` | ``gpu``), without measuring.

    ``auto`` over WebDataset shards is ``cpu``: the GPU path reads indexed manifests only.
    """
    if data_cfg.decode == "cpu":
        return "cpu"
    if data_cfg.decode == "auto" and resolve_source(data_cfg.path, data_cfg.format, split).fmt == "wds":
        return "cpu"

    return resolve_decode(data_cfg.decode, device)[0]
