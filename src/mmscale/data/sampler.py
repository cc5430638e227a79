"""Resumable sampler: a seed-determined permutation per epoch, started at any sample offset.

Resume needs only ``(epoch, sample_offset)``: the permutation is a pure function of
``(seed, epoch)``, so the rest of the epoch is the same whether or not the run was interrupted.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The visiting order of rows ``0..n-1`` in ``epoch`` (int64 [n])."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


class ResumableSampler(Sampler[int]):
    """Yields ``epoch_order(...)[start:]`` (this rank's share when ``num_replicas > 1``)."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, start: int = 0,
                 rank: int = 0, num_replicas: int = 1):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.num_replicas = rank, num_replicas
        self.epoch, self.start = 0, start

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Next iteration visits ``epoch``'s order from sample ``start`` (of this rank's share)."""
        self.epoch, self.start = epoch, start

    def _order(self) -> np.ndarray:
        order = epoch_order(self.n, self.seed, self.epoch, self.shuffle)
        # Each rank takes every num_replicas-th row; the tail that does not divide evenly is dropped
        # so that every rank sees the same number of samples (as DistributedSampler(drop_last=True)).
        per_rank = self.n // self.num_replicas if self.num_replicas > 1 else self.n
        return order[self.rank::self.num_replicas][:per_rank]

    def __len__(self) -> int:
        per_rank = self.n // self.num_replicas if self.num_replicas > 1 else self.n
        return max(per_rank - self.start, 0)

    def __iter__(self):
        return iter_chunked(self._order()[self.start:])


def iter_chunked(order: np.ndarray, chunk: int = 65536):
    """Yield Python ints from an int64 array a chunk at a time: ``order.tolist()`` on 10M rows
    would hold 10M int objects (~400 MB) in the main process for the whole epoch."""
    for begin in range(0, len(order), chunk):
        yield from order[begin:begin + chunk].tolist()
