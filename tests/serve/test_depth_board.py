"""The shared queue page: what the model process publishes is what every front end reads, the
batcher publishes every change (so the page returns to 0, never sticks at the bound), and a front end
refuses at the published bound, and by the published wait against the SLO, without asking the model
process."""

import subprocess
import sys
import types

import pytest

from mmscale.serve.app import SENT
from mmscale.serve.batcher import Backlog, DynamicBatcher, QueueFull
from mmscale.serve.config import ServeConfig
from mmscale.serve.depth_board import DepthBoard
from mmscale.serve.frontend import FrontendServer
from mmscale.serve.items import Item
from tests.serve.serve_fakes import FakePredictor


def test_a_published_backlog_and_the_transit_counts_are_read_by_another_process(tmp_path):
    board = DepthBoard(str(tmp_path / "depth"), create=True)
    assert board.backlog() == Backlog() and board.in_transit(4) == 0
    board.publish(Backlog(37, 30, 1234.5, 0.064, 2000.0, 128))
    board.hand(0, 5)
    board.hand(3, 7)
    board.count_received(9)
    reader = ("import sys; from mmscale.serve.depth_board import DepthBoard; "
              "b = DepthBoard(sys.argv[1]); print(*vars(b.backlog()).values(), b.in_transit(4), b.in_transit(1))")
    out = subprocess.run([sys.executable, "-c", reader, board.path], capture_output=True, text=True, check=True)
    # 12 handed by the four front ends, 9 read by the model process: 3 in transit; the first alone is behind
    assert out.stdout.split() == ["37", "30", "1234.5", "0.064", "2000.0", "128", "0.0", "0.0", "3", "0"]
    attached = DepthBoard(board.path)  # a second map of the same page sees later stores too
    board.publish(Backlog(depth=2**40))
    assert attached.backlog().depth == 2**40
    attached.close()
    board.close()


def test_the_batcher_publishes_every_depth_change_and_ends_at_zero():
    fake = FakePredictor(delay_s=0.05)
    published: list[Backlog] = []
    batcher = DynamicBatcher(fake.predict, max_batch=2, max_wait_ms=50, max_queue=3, on_depth=published.append).start()
    futures = [batcher.submit(Item("match", b"img", [f"c{k}"])) for k in range(3)]
    with pytest.raises(QueueFull):
        batcher.submit(Item("match", b"img", ["refused"]))  # a refusal changes nothing
    for future in futures:
        future.result(5)
    batcher.stop()
    # 3 admissions, 2 batches taken (same depth, fewer queued: they now run), 2 batches answered
    assert len(published) == 7 and max(b.depth for b in published) == 3
    taken = [now for before, now in zip(published, published[1:]) if now.depth == before.depth]
    assert len(taken) == 2 and all(b.running_until_s > 0 or b.served_per_s == 0 for b in taken)
    assert published[-1].depth == published[-1].queued == 0 and published[-1].running_until_s == 0.0
    # a batch of 2 in about 50 ms: about 40 requests/s (nothing is published as a rate before that)
    rated = [b for b in published if b.served_per_s]
    assert len(rated) >= 2 and 20 < rated[0].served_per_s <= 40 and rated[0].batch_s >= 0.05
    assert all(b.max_batch == 2 for b in published)


def test_the_wait_counts_full_batches_ahead_and_its_own_batch_at_least_as_long_as_recent_ones():
    now = 100.0
    backlog = Backlog(depth=140, queued=100, running_until_s=now + 0.02, batch_s=0.03, served_per_s=1000.0, max_batch=40)
    # 100 ahead at 40 a batch: two full batches (40 ms each at the rate), then its own at place 21: 21 ms,
    # shorter than recent batches (30 ms), which its own fills to under load
    assert backlog.wait_s(now) == pytest.approx(0.02 + 0.08 + 0.03)
    assert backlog.wait_s(now, in_transit=15) == pytest.approx(0.02 + 0.08 + 0.036)  # place 36: 36 ms
    assert backlog.wait_s(now + 0.05) == pytest.approx(0.08 + 0.03)  # the running batch is late: nothing left
    assert Backlog(depth=5, queued=5).wait_s(now) == 0.0  # no batch timed: not known


def test_a_front_end_refuses_at_the_published_bound_counting_requests_in_transit(tmp_path):
    board = DepthBoard(str(tmp_path / "depth"), create=True)
    asked = []
    runner = types.SimpleNamespace(admit=lambda: asked.append(True))
    front = FrontendServer(ServeConfig(max_queue=4, frontends=2), runner, str(tmp_path), board, slot=1)
    board.publish(Backlog(depth=3))
    front.admit()  # below the bound: this front end's own checks decide, and the request is counted
    assert asked == [True] and board.in_transit(2) == 1
    with pytest.raises(QueueFull, match=r"queue full \(4 requests\)"):
        front.admit()  # 3 in the model process and 1 on its way
    assert asked == [True]  # refused on the page alone
    board.count_received(1)
    board.publish(Backlog(depth=4))
    with pytest.raises(QueueFull, match=r"queue full \(4 requests\)"):
        front.admit()
    board.close()


def test_a_front_end_refuses_by_the_wait_with_requests_in_transit_against_the_slo(tmp_path):
    board = DepthBoard(str(tmp_path / "depth"), create=True)
    asked = []
    runner = types.SimpleNamespace(admit=lambda: asked.append(True))
    front = FrontendServer(ServeConfig(max_queue=1000, slo_ms=100, frontends=2), runner, str(tmp_path), board)
    board.publish(Backlog(depth=0, batch_s=0.5, served_per_s=200.0, max_batch=100))  # idle: any request is taken
    front.admit()
    board.count_received(1)
    board.publish(Backlog(depth=5, queued=5, batch_s=0.05, served_per_s=200.0, max_batch=10))  # its own batch: 50 ms
    front.admit()
    board.publish(Backlog(depth=5, queued=5))  # no batch timed yet: the model process decides
    front.admit()
    assert len(asked) == 3 and board.in_transit(2) == 2
    board.hand(1, 13)  # the other front end admitted 13 more: 20 ahead, two full batches, then its own
    board.publish(Backlog(depth=5, queued=5, batch_s=0.05, served_per_s=200.0, max_batch=10))
    with pytest.raises(QueueFull, match=r"20 requests ahead would take 150 ms, more than slo_ms=100"):
        front.admit()
    board.count_received(16)  # the model process read them all: the newcomer shares the next batch
    front.admit()
    front.cfg = ServeConfig(max_queue=1000, slo_ms=0, frontends=2)  # no SLO: only the count bounds admission
    board.publish(Backlog(depth=500, queued=500, batch_s=0.05, served_per_s=200.0, max_batch=10))
    front.admit()
    assert len(asked) == 5
    board.close()


def test_a_request_that_is_never_sent_leaves_the_transit_count(tmp_path):
    board = DepthBoard(str(tmp_path / "depth"), create=True)
    runner = types.SimpleNamespace(admit=lambda: None)
    front = FrontendServer(ServeConfig(frontends=1), runner, str(tmp_path), board)
    front.admit(), front.admit()
    front.release({SENT: True})  # sent: in transit until the model process reads it
    front.release({})  # a bad request answered here: never sent
    assert board.in_transit(1) == 1
    board.close()
