"""Training: the loop, precision, compile, checkpoint/resume, DDP/FSDP2, metrics, retrieval eval.

``train(job) -> TrainResult``; ``TrainStep`` and ``synthetic_batch`` are reusable by benchmarks.
"""

from mmscale.train.config import TrainConfig, TrainJob
from mmscale.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainJob", "TrainResult", "train"]
