"""The shared queue page: what the model process publishes is what every front end reads, the
batcher publishes every change (so the page returns to 0, never sticks at the bound), and a front end
refuses at the published bound, and by the published wait against the SLO, without asking the model
process."""

import subprocess
import sys
import time
import types

import pytest

from mmscale.serve.batcher import DynamicBatcher, QueueFull
from mmscale.serve.config import ServeConfig
from mmscale.serve.depth_board import DepthBoard
from mmscale.serve.frontend import FrontendServer
from mmscale.serve.items import Item
from tests.serve.serve_fakes import FakePredictor


def test_a_published_depth_is_read_by_another_process(tmp_path):
    board = DepthBoard(str(tmp_path / "depth"), create=True)
    assert board.read() == 0
    board.publish(37, 1234.5)
    reader = ("import sys; from mmscale.serve.depth_board import DepthBoard; "
              "b = DepthBoard(sys.argv[1]); print(b.read(), b.answer_at_s())")
    out = subprocess.run([sys.executable, "-c", reader, board.path], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["37", "1234.5"]
    attached = DepthBoard(board.path)  # a second map of the same page sees later stores too
    board.publish(2**40)
    assert attached.read() == 2**40
    attached.close()
    board.close()


def test_the_batcher_publishes_every_depth_change_and_ends_at_zero():
    fake = FakePredictor(delay_s=0.05)
    published = []
    batcher = DynamicBatcher(fake.predict, max_batch=2, max_wait_ms=50, max_queue=3,
                             on_depth=lambda depth, answer_at_s: published.append((depth, answer_at_s))).start()
    futures = [batcher.submit(Item("match", b"img", [f"c{k}"])) for k in range(3)]
    with pytest.raises(QueueFull):
        batcher.submit(Item("match", b"img", ["refused"]))  # a refusal changes nothing
    for future in futures:
        future.result(5)
    after_s = time.monotonic()
    batcher.stop()
    seen = [depth for depth, _ in published]
    assert seen[:3] == [1, 2, 3]
    assert seen[3:] == [1, 0]  # one batch of 2, then the last one: the page returns to empty
    assert all(at == 0.0 for _, at in published[:3])  # no batch timed yet: no wait to publish
    # once a batch of 2 took about 50 ms, the third request would be answered within its own batch time
    assert 0.0 < published[3][1] <= after_s + 0.2


def test_a_front_end_refuses_at_the_published_bound_before_its_own_checks(tmp_path):
    board = DepthBoard(str(tmp_path / "depth"), create=True)
    asked = []
    runner = types.SimpleNamespace(admit=lambda: asked.append(True))
    front = types.SimpleNamespace(board=board, cfg=ServeConfig(max_queue=4), runner=runner)
    board.publish(3)
    FrontendServer.admit(front)  # below the bound: this front end's own checks decide
    assert asked == [True]
    board.publish(4)
    with pytest.raises(QueueFull, match=r"queue full \(4 requests\)"):
        FrontendServer.admit(front)
    assert asked == [True]  # refused on the page alone
    board.close()


def test_a_front_end_refuses_by_the_published_wait_against_the_slo(tmp_path):
    board = DepthBoard(str(tmp_path / "depth"), create=True)
    asked = []
    runner = types.SimpleNamespace(admit=lambda: asked.append(True))
    front = types.SimpleNamespace(board=board, cfg=ServeConfig(max_queue=100, slo_ms=100), runner=runner)
    now = time.monotonic()
    board.publish(5, now + 0.05)  # answered in 50 ms: within the SLO
    FrontendServer.admit(front)
    board.publish(5, 0.0)  # no batch timed yet: the model process decides
    FrontendServer.admit(front)
    board.publish(0, now + 1.0)  # idle: any request is taken
    FrontendServer.admit(front)
    assert len(asked) == 3
    board.publish(5, time.monotonic() + 0.3)
    with pytest.raises(QueueFull, match=r"5 requests ahead would take \d+ ms, more than slo_ms=100"):
        FrontendServer.admit(front)
    front.cfg = ServeConfig(max_queue=100, slo_ms=0)  # no SLO: only the count bounds admission
    FrontendServer.admit(front)
    assert len(asked) == 4
    board.close()
