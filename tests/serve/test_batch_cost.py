"""The batch-cost line: fixed and per-request parts from recent (size, time) pairs, and none until
sizes have varied (one size says nothing about how time grows)."""

import pytest

from mmscale.serve.batch_cost import BatchCost
from mmscale.serve.batcher import Backlog


def fitted(pairs) -> tuple[float, float] | None:
    cost = BatchCost()
    for size, seconds in pairs:
        cost.add(size, seconds)
    return cost.line()


def test_a_line_through_varied_sizes_is_recovered():
    line = fitted([(n, 0.003 + 0.0002 * n) for n in (20, 68, 160, 256, 128, 40)])
    assert line == pytest.approx((0.003, 0.0002))


def test_one_size_identifies_no_line():
    assert fitted([]) is None
    assert fitted([(8, 0.05)] * 30) is None


def test_a_fixed_cost_reads_as_fixed_and_a_cost_through_the_origin_as_per_request():
    assert fitted([(n, 0.05) for n in (2, 4, 3, 8, 5)]) == pytest.approx((0.05, 0.0))
    fixed_s, per_request_s = fitted([(n, 0.001 * n - 0.0005) for n in (2, 10, 4, 8)])  # below the origin
    assert fixed_s == 0.0 and per_request_s > 0


def test_the_wait_reads_full_batches_from_the_line_not_from_the_rate_at_small_batches():
    # recent batches of 4 at 50 ms read 80 requests/s; the line says a batch of 8 also takes 50 ms
    rate_only = Backlog(depth=8, queued=8, batch_s=0.05, served_per_s=80.0, max_batch=8)
    with_line = Backlog(depth=8, queued=8, batch_s=0.05, served_per_s=80.0, max_batch=8, fixed_s=0.05)
    assert rate_only.wait_s(0.0) == pytest.approx(0.1 + 0.05)  # a full batch ahead "takes" 100 ms
    assert with_line.wait_s(0.0) == pytest.approx(0.05 + 0.05)
