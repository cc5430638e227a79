"""Weights & Biases: one W&B run per training run, named after ``out_dir``, in project ``mmscale``.

Its files go under ``out_dir/wandb``. Offline unless WANDB_MODE says otherwise or WANDB_API_KEY is
set, so nothing contacts a server unasked; ``wandb sync out_dir/wandb/offline-run-*`` uploads an
offline run later. The config is the job config; scalars are logged per log step with ``step=``.
"""

from __future__ import annotations

import os
from pathlib import Path

import wandb

PROJECT = "mmscale"


class WandbTracker:
    def __init__(self, out_dir: Path, config: dict):
        out_dir = out_dir.resolve()
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or PROJECT, dir=out_dir, name=out_dir.name,
                              config=config, mode=mode)

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()
