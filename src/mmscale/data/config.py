"""``DataConfig``: where the samples are and how to turn them into model input.

The batch size is not here: the training job owns it (it depends on devices and accumulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmscale.errors import ConfigError

FORMATS = ("auto", "jsonl", "csv", "coco", "wds")


@dataclass
class DataConfig:
    path: str = "data/synth"
    """Manifest file (.jsonl, .csv, COCO .json), a .tar shard or shard pattern, or a directory
    holding ``train.jsonl``/``val.jsonl`` or ``train-*.tar``/``val-*.tar``."""
    format: Literal["auto", "jsonl", "csv", "coco", "wds"] = "auto"
    """Manifest format; ``auto`` decides from the file name."""
    image_root: str | None = None
    """Directory image paths are relative to; default: the manifest's directory (COCO: required
    unless paths resolve from the manifest's directory)."""
    image_size: int = 224
    """Side of the square model input, in pixels (images are squashed, as ``Resize((S, S))``)."""
    max_text_len: int = 128
    """Tokens per caption including [CLS]/[SEP]; longer captions are truncated."""
    tokenizer: str | None = None
    """tokenizer.json, or a directory with tokenizer.json/vocab.txt; default: $MMSCALE_TOKENIZER,
    then the BERT-uncased vocab.txt shipped with mmscale."""
    num_workers: int = 2
    """DataLoader worker processes (0 = load in the main process)."""
    prefetch_factor: int = 4
    """Batches each worker keeps ready ahead of the consumer."""
    strict: bool = False
    """Raise ``DataError`` on the first bad sample instead of counting and skipping it."""
    max_image_pixels: int = 64_000_000
    """Images with more pixels are skipped as ``too_many_pixels`` (decompression-bomb guard)."""
    limit: int | None = None
    """Use only the first N samples of the manifest (for data-scale runs); None = all."""
    shuffle: bool = True
    """Visit samples in a seed-determined permutation, new each epoch."""
    seed: int = 0
    """Seed of the per-epoch permutation (and of the WebDataset shuffle buffer)."""
    decode: Literal["cpu", "gpu", "auto"] = "cpu"
    """Where images are decoded: ``cpu`` (PIL in workers), ``gpu`` (nvjpeg on the device) or ``auto``
    (training on CUDA times a few steps of each path and keeps the faster; otherwise cpu)."""

    def validate(self) -> None:
        if not self.path.strip():
            raise ConfigError("data.path", "is empty: give a manifest, shard pattern or dataset directory")
        if self.image_root is not None and not self.image_root.strip():
            raise ConfigError("data.image_root", "is empty: give a directory, or leave it unset for the manifest's")
        if self.image_size < 8:
            raise ConfigError("data.image_size", f"must be >= 8, got {self.image_size}")
        if self.max_text_len < 2:
            raise ConfigError("data.max_text_len", f"must be >= 2 ([CLS] and [SEP]), got {self.max_text_len}")
        if self.num_workers < 0:
            raise ConfigError("data.num_workers", f"must be >= 0, got {self.num_workers}")
        if self.prefetch_factor < 1:
            raise ConfigError("data.prefetch_factor", f"must be >= 1, got {self.prefetch_factor}")
        if self.max_image_pixels < 1:
            raise ConfigError("data.max_image_pixels", f"must be >= 1, got {self.max_image_pixels}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("data.limit", f"must be >= 1 or unset, got {self.limit}")
        if self.decode not in ("cpu", "gpu", "auto"):
            raise ConfigError("data.decode", f"must be cpu, gpu or auto, got {self.decode!r}")
        if self.format not in FORMATS:
            raise ConfigError("data.format", f"must be one of {', '.join(FORMATS)}, got {self.format!r}")
