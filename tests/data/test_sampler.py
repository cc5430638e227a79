"""EpochBatches: the batches of a per-epoch DataLoader, epoch after epoch, in one iteration."""

from itertools import islice

import pytest

from mmscale.data.sampler import EpochBatches, ResumableSampler


def per_epoch_batches(n, batch, drop_last, epoch, start, rank=0, replicas=1, epochs=4):
    """What re-iterating a DataLoader(sampler, batch, drop_last) once per epoch yields."""
    out = []
    for e in range(epoch, epoch + epochs):
        sampler = ResumableSampler(n, seed=5, start=start if e == epoch else 0, rank=rank, num_replicas=replicas)
        sampler.set_epoch(e, start if e == epoch else 0)
        rows = list(sampler)
        stop = len(rows) - len(rows) % batch if drop_last else len(rows)
        out += [rows[b:b + batch] for b in range(0, stop, batch)]
    return out


@pytest.mark.parametrize("drop_last", [True, False])
@pytest.mark.parametrize("start", [0, 3, 4, 9])
@pytest.mark.parametrize("rank,replicas", [(0, 1), (1, 2)])
def test_same_batches_as_one_loader_pass_per_epoch(drop_last, start, rank, replicas):
    n, batch, epoch = 22, 3, 2
    sampler = ResumableSampler(n, seed=5, rank=rank, num_replicas=replicas)
    sampler.set_epoch(epoch, start)
    expected = per_epoch_batches(n, batch, drop_last, epoch, start, rank, replicas)
    assert list(islice(EpochBatches(sampler, batch, drop_last), len(expected))) == expected


def test_no_batch_mixes_epochs_and_the_tail_is_dropped():
    sampler = ResumableSampler(10, seed=1)
    batches = list(islice(EpochBatches(sampler, 4, drop_last=True), 6))
    assert [len(b) for b in batches] == [4] * 6
    first, second = set(batches[0] + batches[1]), set(batches[2] + batches[3])
    assert len(first) == 8 and len(second) == 8  # two whole batches per epoch, no repeats inside one


def test_epoch_end_is_where_a_per_epoch_loader_stops():
    sampler = ResumableSampler(10)
    assert EpochBatches(sampler, 4, drop_last=True).epoch_end(0) == 8
    assert EpochBatches(sampler, 4, drop_last=True).epoch_end(4) == 8
    assert EpochBatches(sampler, 4, drop_last=False).epoch_end(8) == 10
    assert EpochBatches(sampler, 4, drop_last=True).epoch_end(10) == 10  # entered at the very end


def test_an_epoch_shorter_than_a_batch_ends_instead_of_spinning():
    assert list(EpochBatches(ResumableSampler(3), 4, drop_last=True)) == []
    partial = list(islice(EpochBatches(ResumableSampler(3, shuffle=False), 4, drop_last=False), 3))
    assert partial == [[0, 1, 2]] * 3  # no drop_last: the short epoch repeats
