# Not StatefulDataLoader (equal speed, 1.03x): its per-rank state can't resume at a new world size; decode=gpu skipped 3 batches
"""Resumable sampler: a seed-determined permutation per epoch, started at any sample offset.

Resume needs only ``(epoch, sample_offset)``: the permutation is a pure function of
``(seed, epoch)``, so the rest of the epoch is the same whether or not the run was interrupted.

``EpochBatches`` hands a DataLoader those orders in batches, epoch after epoch, as one endless
iteration. A DataLoader re-iterated once per epoch stops feeding its workers at the end of each
epoch: the last batches drain, and the next epoch's first batch waits for a worker to build it
from nothing (every worker builds a whole batch, so that is the full latency of one batch). On a
small set or many ranks, epochs are short and that wait recurs often.
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

    @property
    def per_rank(self) -> int:
        """Samples of one epoch this rank visits."""
        return self.n // self.num_replicas if self.num_replicas > 1 else self.n

    def order(self, epoch: int) -> np.ndarray:
        """This rank's rows of ``epoch``, in visiting order."""
        order = epoch_order(self.n, self.seed, epoch, self.shuffle)
        # Each rank takes every num_replicas-th row; the tail that does not divide evenly is dropped
        # so that every rank sees the same number of samples (as DistributedSampler(drop_last=True)).
        return order[self.rank::self.num_replicas][:self.per_rank]

    def __len__(self) -> int:
        return max(self.per_rank - self.start, 0)

    def __iter__(self):
        return iter_chunked(self.order(self.epoch)[self.start:])


class EpochBatches(Sampler[list[int]]):
    """Batches of ``sampler``'s orders from its ``(epoch, start)`` on, epoch after epoch, forever.

    Each epoch is batched on its own, as a per-epoch DataLoader would: no batch mixes two epochs,
    and with ``drop_last`` each epoch's short tail is dropped. So the batches are exactly those of
    re-iterating a DataLoader over ``sampler`` once per epoch, without the pause between epochs.
    """

    def __init__(self, sampler: ResumableSampler, batch_size: int, drop_last: bool):
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def epoch_end(self, start: int = 0) -> int:
        """The sample offset at which an epoch entered at ``start`` ends: its short tail dropped
        under ``drop_last``, as a DataLoader over ``sampler[start:]`` would drop it."""
        left = max(self.sampler.per_rank - start, 0)
        return start + (left - left % self.batch_size if self.drop_last else left)

    def __iter__(self):
        epoch, start, size = self.sampler.epoch, self.sampler.start, self.batch_size
        while True:
            order = self.sampler.order(epoch)[start:self.epoch_end(start)]
            for begin in range(0, len(order), size):
                yield order[begin:begin + size].tolist()
            if self.epoch_end(0) == 0:
                return  # not one batch in a whole epoch: repeating would never yield again
            epoch, start = epoch + 1, 0


def iter_chunked(order: np.ndarray, chunk: int = 65536):
    """Yield Python ints from an int64 array a chunk at a time: ``order.tolist()`` on 10M rows
    would hold 10M int objects (~400 MB) in the main process for the whole epoch."""
    for begin in range(0, len(order), chunk):
        yield from order[begin:begin + chunk].tolist()
