"""Per-log-step metrics rows to JSONL and TensorBoard, plus host/GPU memory readings.

Names carry namespace and unit (torchtitan style): ``loss/itc``, ``throughput/samples_per_s``,
``time/data_wait_pct``, ``memory/peak_gpu_gib``.
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

import psutil
import torch

from mmscale.extras import install_hint
from mmscale.strict_json import dumps

log = logging.getLogger(__name__)

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
    """One JSON object per row; mirrors numeric fields to TensorBoard when asked. ``append``: a
    resumed run continues the file; a fresh run starts it again (rows of an earlier run in the
    same folder would otherwise read as this run's)."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True, enabled: bool = True, append: bool = True):
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a" if append else "w")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))
            except ImportError:  # JSONL still has everything
                log.info("no TensorBoard events: the tensorboard package is not installed (%s); "
                         "metrics.jsonl has every row", install_hint("tensorboard"))

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self.handle.write(dumps(row) + "\n")
        self.handle.flush()  # a kill -9 must not lose rows already logged
        if self.tb is not None:
            step = row.get("step", 0)
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if not self.enabled:
            return
        self.handle.close()
        if self.tb is not None:
            self.tb.close()
