"""Where the training scalars go besides metrics.jsonl (``train.trackers``): TensorBoard, MLflow, W&B.

Each tracker is a class in a module of its own, with ``log(scalars, step)`` and ``close()``; only
the ones a run names are imported, as mlflow and wandb are optional dependencies. TensorBoard is
the default, so without its package a run says which extra to install and goes on with
metrics.jsonl alone; MLflow or W&B asked for and missing stops the run before any work.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Protocol

from mmscale.errors import ConfigError
from mmscale.extras import install_hint, missing_modules

log = logging.getLogger(__name__)

# name in train.trackers (also the name of its extra and of its module here) -> its class
TRACKERS = {"tensorboard": "TensorBoardTracker", "mlflow": "MlflowTracker", "wandb": "WandbTracker"}
DEFAULT = "tensorboard"


class Tracker(Protocol):
    def log(self, scalars: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def check_names(names: list[str]) -> None:
    """``ConfigError`` on ``train.trackers`` for a name that is not known or given twice."""
    for i, name in enumerate(names):
        if name not in TRACKERS:
            raise ConfigError("train.trackers", f"unknown tracker {name!r} (known: {', '.join(TRACKERS)})")
        if name in names[:i]:
            raise ConfigError("train.trackers", f"{name!r} is listed twice")


def check_installed(names: list[str]) -> None:
    """``ConfigError`` naming the pip line for a tracker other than the default that is not installed."""
    for name in names:
        if name != DEFAULT and missing_modules(name):
            raise ConfigError("train.trackers", f"{name!r} needs the '{name}' extra, which is not installed: "
                              f"{install_hint(name)}")


def open_trackers(names: list[str], out_dir: Path, config: dict) -> list[Tracker]:
    """The trackers of ``names``, each started for this run; ``config`` is the job config as a dict."""
    check_installed(names)
    trackers = []
    for name in names:
        if name == DEFAULT and missing_modules(name):
            log.info("no TensorBoard events: the tensorboard package is not installed (%s); "
                     "metrics.jsonl has every row", install_hint(name))
            continue
        module = importlib.import_module(f"{__name__}.{name}")  # optional dependencies: imported when asked for
        trackers.append(getattr(module, TRACKERS[name])(out_dir, config))
    return trackers
