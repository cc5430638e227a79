"""``check_dataset``: read every sample the way training would and report what would be skipped.

Counts come from the same code paths as the loader (index-time checks of the manifest, then the
image decode in DataLoader workers), so ``check`` and training always agree on what is bad.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from torch.utils.data import DataLoader

from mmscale.data.config import DataConfig
from mmscale.data.loader import open_dataset
from mmscale.data.readers import read_manifest, resolve_source
from mmscale.data.skips import BadSample, SkipCounter
from mmscale.errors import ConfigError
from mmscale.strict_json import dumps


@dataclass
class CheckReport:
    path: str
    fmt: str
    counter: SkipCounter
    bad: list[BadSample] = field(default_factory=list)  # every bad sample, in reading order

    def as_dict(self) -> dict:
        """Exactly ``{"read", "used", "skipped", "by_reason"}``."""
        return self.counter.as_dict()

    def write_bad_list(self, path: str | Path, flag: str = "bad_list") -> None:
        """One JSON object per bad sample: reason, path, line, detail (the directory is created)."""
        prepare_output(path, flag)
        try:
            with open(path, "w", encoding="utf-8") as f:
                for bad in self.bad:
                    f.write(dumps(bad.as_dict()) + "\n")
        except OSError as exc:
            raise ConfigError(flag, f"cannot write {path} ({exc.strerror or exc})") from None


def prepare_output(path: str | Path, flag: str) -> None:
    """Make sure ``path`` can be written as a file: create its directory; refuse a directory."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(flag, f"{path} is a directory: give a file name, e.g. {path / 'bad.jsonl'}")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(flag, f"cannot write {path}: {blocking} is a file, not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(flag, f"cannot create the directory {path.parent} for {path} "
                                f"({exc.strerror or exc})") from None


class _Statuses:
    """Collate for checking: keep only the bad samples and a count of the good ones."""

    def __call__(self, items):
        bad = [item for item in items if isinstance(item, BadSample)]
        return len(items) - len(bad), bad


def check_dataset(path: str, fmt: str = "auto", image_root: str | None = None, split: str = "train",
                  image_size: int = 224, max_image_pixels: int = 64_000_000, strict: bool = False,
                  num_workers: int = 2, limit: int | None = None, progress: bool = False) -> CheckReport:
    """Decode every sample of ``path`` (a manifest, shard or dataset directory).

    Under ``strict`` the first bad sample raises ``DataError`` naming file, line and reason.
    """
    cfg = DataConfig(path=str(path), format=fmt, image_root=image_root, image_size=image_size,
                     max_image_pixels=max_image_pixels, strict=strict, limit=limit, shuffle=False)
    cfg.validate()
    if num_workers < 0:
        raise ConfigError("num_workers", f"must be >= 0 (0 decodes in this process), got {num_workers}")
    opened = open_dataset(cfg, split)  # strict: a bad manifest row raises here
    counter = SkipCounter().merge(opened.index_skips)
    bad: list[BadSample] = []
    # Index-time examples are capped by the counter; re-reading the manifest is cheap, so keep all.
    if opened.index_skips.skipped > len(opened.index_skips.examples):
        bad.extend(_all_index_skips(cfg, split))
    else:
        bad.extend(opened.index_skips.examples)
    loader = DataLoader(opened.dataset, batch_size=32, num_workers=num_workers, collate_fn=_Statuses(),
                        shuffle=False)
    total = len(opened.dataset) if opened.index is not None else None
    with _progress(progress, total) as bar:
        task = bar.add_task("check", total=total) if bar else None
        for n_good, bad_items in loader:
            counter.add_used(n_good)
            for item in bad_items:
                if strict:
                    raise item.to_error()
                counter.add(item.reason, item)
                bad.append(item)
            if bar:
                bar.advance(task, n_good + len(bad_items))
    return CheckReport(str(path), resolve_source(path, fmt, split).fmt, counter, bad)


def _all_index_skips(cfg: DataConfig, split: str) -> list[BadSample]:
    counter = SkipCounter(max_examples=None)
    read_manifest(cfg.path, cfg.format, cfg.image_root, counter, False, cfg.limit, split)
    return counter.examples


def _progress(enabled: bool, total: int | None):
    if not enabled:
        return contextlib.nullcontext(None)

    return Progress(TextColumn("check"), BarColumn(), MofNCompleteColumn(), transient=True)
