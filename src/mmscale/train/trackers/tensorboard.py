"""TensorBoard event files in ``out_dir/tensorboard`` (the ``tensorboard`` extra)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class TensorBoardTracker:
    def __init__(self, out_dir: Path, config: dict):
        self.writer = SummaryWriter(str(out_dir / "tensorboard"))

    def log(self, scalars: dict[str, float], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()
