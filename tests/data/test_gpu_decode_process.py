"""``DecodeProcess`` on CPU: the child decodes exactly as the in-process decoder, in order, and its
failures reach the parent as errors, never as a hang."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from mmscale.data.gpu_decode import GpuDecoder
from mmscale.data.gpu_decode_process import DecodeProcess
from mmscale.data.gpu_prefetch import GpuDecodeLoader
from mmscale.data.gpu_raw import read_raw_batch
from tests.data.conftest import FakeTokenizer, jpeg_bytes

SIZE, MAX_PIXELS = 32, 100_000


@pytest.fixture(scope="module")
def child():
    process = DecodeProcess(SIZE, MAX_PIXELS, "cpu")
    yield process
    process.close()


def raw_batches(tmp_path, n=8, per_batch=3, bad=(5,)):
    items = []
    for i in range(n):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(jpeg_bytes(seed=i) if i not in bad else b"not a jpeg")
        items.append((i, str(path), f"caption number {i}"))
    return [read_raw_batch(items[k:k + per_batch], FakeTokenizer(), SIZE, MAX_PIXELS, 8)
            for k in range(0, n, per_batch)]


def test_child_decodes_like_the_in_process_decoder(tmp_path, child):
    raw = raw_batches(tmp_path, n=4, per_batch=4, bad=())[0]
    first_end = int(raw.jpeg_offsets[1])
    raw.jpeg_bytes[3:first_end] = 0  # header intact, stream undecodable: nvjpeg and PIL both refuse
    here = GpuDecoder(SIZE, MAX_PIXELS, "cpu")(dataclasses.replace(raw, skips=copy.deepcopy(raw.skips)))
    child.submit(raw)
    there = child.receive(raw)
    assert torch.equal(there.images, here.images)
    assert there.indices.tolist() == here.indices.tolist() == [1, 2, 3]
    assert torch.equal(there.input_ids, here.input_ids) and there.captions == here.captions
    assert there.skips.as_dict() == here.skips.as_dict()
    assert (there.skips.read, there.skips.used, there.skips.skipped) == (4, 3, 1)
    assert child.images >= 3 and child.busy_s > 0  # the child's own busy time came back


def test_loader_keeps_order_and_an_early_stop_leaves_nothing_behind(tmp_path, child):
    raws = raw_batches(tmp_path)
    seen = [i for b in GpuDecodeLoader(raws, child, prefetch=2) for i in b.indices.tolist()]
    assert seen == [0, 1, 2, 3, 4, 6, 7]
    iterator = iter(GpuDecodeLoader(raws, child, prefetch=2))
    assert next(iterator).indices.tolist() == [0, 1, 2]
    iterator.close()  # batches 2 and 3 may be in the child or its queue: dropped, not kept
    assert child.outstanding == 0
    again = [b.indices.tolist() for b in GpuDecodeLoader(raws, child, prefetch=2)]
    assert again == [[0, 1, 2], [3, 4], [6, 7]]


def test_a_failed_decode_is_raised_with_the_childs_traceback_and_the_child_goes_on(tmp_path, child):
    raw = raw_batches(tmp_path, n=2, per_batch=2, bad=())[0]
    broken = dataclasses.replace(raw, slots=[("jpeg", 7)])  # no seventh stream: an IndexError there
    child.submit(broken)
    with pytest.raises(RuntimeError, match="IndexError"):
        child.receive(broken)
    assert child.outstanding == 0
    child.submit(raw)
    assert child.receive(raw).indices.tolist() == [0, 1]


def test_a_dead_child_is_an_error_not_a_hang(tmp_path):
    process = DecodeProcess(SIZE, MAX_PIXELS, "cpu")
    process.process.kill()
    process.process.join(timeout=10)
    raw = raw_batches(tmp_path, n=1, per_batch=1, bad=())[0]
    process.submit(raw)
    with pytest.raises(RuntimeError, match="exited"):
        process.receive(raw)
    process.close()
