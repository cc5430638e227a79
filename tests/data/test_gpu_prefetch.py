"""``GpuDecodeLoader``'s logic on CPU: order, counts, decoding ahead in its thread, errors, stop."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from mmscale.data.gpu_decode import GpuDecoder
from mmscale.data.gpu_prefetch import GpuDecodeLoader
from tests.data.raw_batches import read_raw_batch
from mmscale.data.skips import SkipCounter
from tests.data.conftest import FakeTokenizer, jpeg_bytes

SIZE, MAX_PIXELS = 32, 100_000


class ScriptedDecoder:
    """Stands in for ``GpuDecoder``: each raw 'batch' is an int; ``hold[k]`` runs before batch k is
    returned (a decode that blocks), ``fail_at`` raises on that batch."""

    device = torch.device("cpu")

    def __init__(self, hold=None, fail_at=None):
        self.hold, self.fail_at = hold or {}, fail_at
        self.decoded: list[int] = []

    def __call__(self, k):
        if k == self.fail_at:
            raise RuntimeError(f"decoder broke on batch {k}")
        if k in self.hold:
            self.hold[k]()
        self.decoded.append(k)
        return SimpleNamespace(k=k)


def decode_threads() -> set[threading.Thread]:
    """Live decode threads (a test compares against those alive before it: another test's
    abandoned generator may not be collected yet)."""
    return {t for t in threading.enumerate() if t.name == "mmscale-gpu-decode"}


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_real_decoder_batches_keep_order_and_counts(tmp_path, threads):
    items = []
    for i in range(8):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(jpeg_bytes(seed=i) if i != 5 else b"not a jpeg")
        items.append((i, str(path), f"caption number {i}"))
    raws = [read_raw_batch(items[k:k + 3], FakeTokenizer(), SIZE, MAX_PIXELS, 8) for k in range(0, 8, 3)]
    batches = list(GpuDecodeLoader(raws, GpuDecoder(SIZE, MAX_PIXELS, "cpu"), prefetch=2, threads=threads))
    seen = [i for b in batches for i in b.indices.tolist()]
    assert seen == [0, 1, 2, 3, 4, 6, 7]
    assert all(b.images.shape[1:] == (3, SIZE, SIZE) for b in batches)
    total = SkipCounter()
    for b in batches:
        total.merge(b.skips)
    assert (total.read, total.used, total.skipped) == (8, 7, 1)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_decode_the_next_batch_while_the_consumer_holds_this_one(threads):
    """Batch 1's decode can only finish once the consumer has received batch 0: it does in a
    thread."""
    consumer_has_0 = threading.Event()
    finished = {}
    hold = {1: lambda: finished.setdefault(1, consumer_has_0.wait(timeout=5.0))}
    out = []
    for batch in GpuDecodeLoader(range(3), ScriptedDecoder(hold), prefetch=2, threads=threads):
        out.append(batch.k)
        consumer_has_0.set()
    assert out == [0, 1, 2] and finished[1] is True


def test_inline_decodes_ahead_before_handing_out():
    """threads=0: batches 0 and 1 are decoded (prefetch 2) before batch 0 is handed out."""
    consumer_has_0 = threading.Event()
    finished = {}
    hold = {1: lambda: finished.setdefault(1, consumer_has_0.wait(timeout=0.2))}
    out = []
    for batch in GpuDecodeLoader(range(3), ScriptedDecoder(hold), prefetch=2, threads=0):
        out.append(batch.k)
        consumer_has_0.set()
    assert out == [0, 1, 2] and finished[1] is False


def test_two_threads_read_the_next_batch_while_this_one_decodes():
    """threads=2: the source is read while batch 0's decode is blocked; one thread could not."""
    for threads, expected in ((2, True), (1, False)):
        read_1 = threading.Event()

        def source():
            yield 0
            read_1.set()
            yield 1

        finished = {}
        hold = {0: lambda: finished.setdefault(0, read_1.wait(timeout=2.0 if expected else 0.2))}
        out = [b.k for b in GpuDecodeLoader(source(), ScriptedDecoder(hold), prefetch=2, threads=threads)]
        assert out == [0, 1] and finished[0] is expected


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_error_reaches_the_consumer_and_the_threads_end(threads):
    before = decode_threads()
    loader = GpuDecodeLoader(range(5), ScriptedDecoder(fail_at=2), prefetch=2, threads=threads)
    got = []
    with pytest.raises(RuntimeError, match="decoder broke on batch 2"):
        for batch in loader:
            got.append(batch.k)
    assert got == [0, 1]
    assert decode_threads() <= before


def test_source_error_reaches_the_consumer():
    def source():
        yield 0
        raise OSError("worker died")

    before = decode_threads()
    with pytest.raises(OSError, match="worker died"):
        list(GpuDecodeLoader(source(), ScriptedDecoder(), threads=2))
    assert decode_threads() <= before


@pytest.mark.parametrize("threads", [1, 2])
def test_consumer_that_stops_early_stops_the_threads(threads):
    decoder = ScriptedDecoder()
    before = decode_threads()
    iterator = iter(GpuDecodeLoader(range(1000), decoder, prefetch=2, threads=threads))
    assert next(iterator).k == 0
    assert len(decode_threads() - before) == threads
    iterator.close()  # what a for loop's break does to the generator
    assert decode_threads() <= before
    assert len(decoder.decoded) <= 1 + 2 + 1  # the one handed out, a full queue, the one in hand


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_source_iterator_is_made_in_the_consumers_thread(threads):
    """Making a DataLoader iterator draws from the global RNG; training forks the RNG around the
    first batch in its own thread, so the draw must happen there, before any stage thread runs."""
    made_in = []

    class Source:
        def __iter__(self):
            made_in.append(threading.current_thread())
            return iter(range(3))

    assert [b.k for b in GpuDecodeLoader(Source(), ScriptedDecoder(), threads=threads)] == [0, 1, 2]
    assert made_in == [threading.current_thread()]


def test_threads_must_be_0_1_or_2():
    with pytest.raises(ValueError, match="threads"):
        GpuDecodeLoader([], ScriptedDecoder(), threads=3)


def test_len_is_the_sources():
    assert len(GpuDecodeLoader([1, 2, 3], ScriptedDecoder())) == 3
