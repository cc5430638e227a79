"""Per-log-step metrics rows to JSONL and the trackers (TensorBoard, MLflow, W&B), plus host/GPU
memory readings.

Names carry namespace and unit (torchtitan style): ``loss/itc``, ``throughput/samples_per_s``,
``time/data_wait_pct``, ``memory/peak_gpu_gib``.
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from pathlib import Path

import psutil
import torch

from mmscale.strict_json import dumps
from mmscale.train.trackers import open_trackers

GIB = 1024**3


def host_rss_gib() -> float:
    return psutil.Process().memory_info().rss / GIB


def peak_rss_gib() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def peak_gpu_gib(device: torch.device) -> float:
    if device.type != "cuda":
        return 0.0
    return torch.cuda.max_memory_allocated(device) / GIB


class MetricsWriter:
    """One JSON object per row; the numeric fields also go to each tracker named (``train.trackers``).
    ``config``: the job config as a dict, which MLflow and W&B store with the run. ``append``: a
    resumed run continues the file; a fresh run starts it again (rows of an earlier run in the
    same folder would otherwise read as this run's)."""

    def __init__(self, out_dir: str | Path, trackers: Sequence[str] = ("tensorboard",), config: dict | None = None,
                 enabled: bool = True, append: bool = True):
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.trackers = []
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a" if append else "w")
        self.trackers = open_trackers(list(trackers), Path(out_dir), config or {})

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self.handle.write(dumps(row) + "\n")
        self.handle.flush()  # a kill -9 must not lose rows already logged
        scalars = {key: value for key, value in row.items()
                   if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}
        if scalars:
            for tracker in self.trackers:
                tracker.log(scalars, row.get("step", 0))

    def close(self) -> None:
        if not self.enabled:
            return
        self.handle.close()
        for tracker in self.trackers:
            tracker.close()
