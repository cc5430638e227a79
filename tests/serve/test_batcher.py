"""The dynamic batcher alone: batches fill to max_batch, never mix tasks, wait a bounded time,
and the bounded queue refuses at once."""

import time

import pytest

from mmscale.serve.batcher import DynamicBatcher, NaiveRunner, Pending, QueueFull
from mmscale.serve.items import Item
from tests.serve.serve_fakes import FakePredictor


def items(n, task="match"):
    return [Item(task, b"img", [f"caption {k}"]) for k in range(n)]


def test_concurrent_requests_share_batches_up_to_max_batch():
    fake = FakePredictor(delay_s=0.05)
    batcher = DynamicBatcher(fake.predict, max_batch=4, max_wait_ms=200, max_queue=100).start()
    futures = [batcher.submit(it) for it in items(10)]
    results = [f.result(5) for f in futures]
    batcher.stop()
    sizes = [n for _, n in fake.batches]
    assert sum(sizes) == 10 and max(sizes) == 4 and len(sizes) <= 4
    assert [r.itm_prob[0] for r in results] == [len(f"caption {k}") / 100 for k in range(10)]


def test_tasks_are_never_mixed_in_one_batch():
    fake = FakePredictor(delay_s=0.02)
    batcher = DynamicBatcher(fake.predict, max_batch=8, max_wait_ms=50, max_queue=100).start()
    futures = [batcher.submit(it) for it in items(3) + items(3, "embed_image") + items(2)]
    for f in futures:
        f.result(5)
    batcher.stop()
    assert sorted(fake.batches) == [("embed_image", 3), ("match", 5)]


def test_fit_takes_what_it_names_and_the_rest_run_next_in_order():
    fake, asked = FakePredictor(delay_s=0.05), []
    batcher = DynamicBatcher(fake.predict, max_batch=8, max_wait_ms=300, max_queue=100,
                             fit=lambda n: asked.append(n) or (4 if n > 4 else n))
    futures = [batcher.submit(it) for it in items(7)]  # all queued before the batcher's thread starts
    batcher.start()
    results = [f.result(5) for f in futures]
    batcher.stop()
    assert [n for _, n in fake.batches] == [4, 3] and asked == [7, 3]
    assert [r.itm_prob[0] for r in results] == [len(f"caption {k}") / 100 for k in range(7)]


def test_a_lone_request_waits_at_most_max_wait():
    fake = FakePredictor()
    batcher = DynamicBatcher(fake.predict, max_batch=64, max_wait_ms=30, max_queue=10).start()
    start = time.monotonic()
    batcher.submit(items(1)[0]).result(5)
    waited = time.monotonic() - start
    batcher.stop()
    assert 0.025 <= waited < 0.5


def test_full_queue_refuses_immediately_and_errors_stay_per_request():
    fake = FakePredictor(delay_s=0.3)
    batcher = DynamicBatcher(fake.predict, max_batch=1, max_wait_ms=0, max_queue=2).start()
    first = batcher.submit(Item("match", b"BAD", ["x"]))
    second = batcher.submit(items(1)[0])
    start = time.monotonic()
    with pytest.raises(QueueFull):
        batcher.submit(items(1)[0])
    assert time.monotonic() - start < 0.05
    with pytest.raises(Exception, match="fake decode failure"):
        first.result(5)
    assert second.result(5).itm_prob
    batcher.stop()


def test_stop_drains_queued_requests():
    fake = FakePredictor(delay_s=0.05)
    batcher = DynamicBatcher(fake.predict, max_batch=2, max_wait_ms=0, max_queue=10).start()
    futures = [batcher.submit(it) for it in items(5)]
    batcher.stop()
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(QueueFull):
        batcher.submit(items(1)[0])


def test_a_crashing_predict_fails_its_batch_and_the_thread_survives():
    calls = []

    def predict(task, batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("device fell over")
        return FakePredictor().predict(task, batch)

    batcher = DynamicBatcher(predict, max_batch=1, max_wait_ms=0, max_queue=10).start()
    with pytest.raises(RuntimeError):
        batcher.submit(items(1)[0]).result(5)
    assert batcher.submit(items(1)[0]).result(5).itm_prob
    batcher.stop()


def test_naive_runner_runs_one_forward_per_request():
    fake = FakePredictor(delay_s=0.01)
    runner = NaiveRunner(fake.predict, threads=4)
    for f in [runner.submit(it) for it in items(6)]:
        f.result(5)
    runner.stop()
    assert [n for _, n in fake.batches] == [1] * 6


def test_the_slo_refuses_what_would_wait_too_long_and_serves_the_rest():
    fake = FakePredictor(delay_s=0.05)  # one request per batch: 20 requests/s once measured
    batcher = DynamicBatcher(fake.predict, max_batch=1, max_wait_ms=0, max_queue=1000, slo_ms=200).start()
    batcher.submit(items(1)[0]).result(5)  # measures the rate
    rate = batcher.served_per_s
    assert 2 < rate <= 20.5  # at most 1 / 50 ms; less on a busy machine
    admitted, refused = [], []
    for it in items(30):
        try:
            admitted.append(batcher.submit(it))
        except QueueFull as exc:
            refused.append(str(exc))
    # admitted while (depth + 1) / rate <= 200 ms: about 0.2 * rate requests (+1 if one was answered
    # meanwhile); the rest are refused at once, by time
    expected = int(0.2 * rate)
    assert expected <= len(admitted) <= expected + 2 and len(refused) == 30 - len(admitted)
    assert "slo_ms=200" in refused[0]
    assert all(f.result(5).itm_prob for f in admitted)
    batcher.stop()


def test_the_served_rate_is_requests_over_time_not_the_mean_of_per_batch_rates():
    """A closed loop alternates large and small batches; averaging their rates would weigh a batch
    of 10 like one of 100 and call the server slower than it is, refusing what it serves in time."""
    batcher = DynamicBatcher(FakePredictor().predict, max_batch=128, max_wait_ms=0, max_queue=1000, slo_ms=100)
    for size, cycle_s in [(100, 0.040), (10, 0.010)] * 20:
        batch = [Pending(it, enqueued_s=time.monotonic() - 1.0) for it in items(size)]  # queued before the cycle
        batcher.running += size
        batcher.last_finish_s = time.monotonic() - cycle_s
        batcher.finish(batch, [None] * size, cycle_s)
    # 110 requests every 50 ms: 2,200/s (the mean of 2,500/s and 1,000/s would be 1,750/s)
    assert 2000 < batcher.served_per_s < 2300


def test_the_queue_shares_the_next_batch_so_two_full_batches_fit_the_slo():
    """A closed loop of two batches' worth (one running, one queued) waits about two batch times:
    admitted, not counted as every request ahead plus a batch of its own; one more is a third batch."""
    fake = FakePredictor(delay_s=0.2)
    batcher = DynamicBatcher(fake.predict, max_batch=16, max_wait_ms=50, max_queue=1000, slo_ms=500).start()
    for future in [batcher.submit(it) for it in items(16)]:  # one batch: about 80 requests/s
        future.result(5)
    running = [batcher.submit(it) for it in items(16)]
    deadline = time.monotonic() + 5
    while batcher.running < 16 and time.monotonic() < deadline:
        time.sleep(0.002)
    queued = [batcher.submit(it) for it in items(16)]  # the 16th: 0.2 s left at most + its batch, 16 / 80/s
    assert len(batcher.queue) == 16 and batcher.expected_wait_s() > 0.4  # the 17th: two batches after this one
    refused = 0
    for it in items(40):  # beyond the next batches' share of the SLO: refused at once
        try:
            queued.append(batcher.submit(it))
        except QueueFull:
            refused += 1
    assert refused > 0
    assert all(f.result(10).itm_prob for f in running + queued)
    batcher.stop()


def test_without_an_slo_only_the_count_bounds_the_queue():
    fake = FakePredictor(delay_s=0.05)
    batcher = DynamicBatcher(fake.predict, max_batch=1, max_wait_ms=0, max_queue=1000, slo_ms=0).start()
    batcher.submit(items(1)[0]).result(5)
    futures = [batcher.submit(it) for it in items(12)]  # 0.6 s of work: admitted all the same
    batcher.stop(0.0)
    assert len(futures) == 12


def test_each_request_s_queue_wait_is_reported_with_its_batch():
    fake = FakePredictor(delay_s=0.2)
    seen = []
    batcher = DynamicBatcher(fake.predict, max_batch=1, max_wait_ms=0, max_queue=10,
                             on_batch=lambda task, size, forward_s, waits: seen.append(waits)).start()
    t0 = time.monotonic()
    first = batcher.submit(items(1)[0])
    time.sleep(0.05)  # the first batch is running when the second request arrives
    t1 = time.monotonic()
    second = batcher.submit(items(1)[0])
    first.result(5), second.result(5)
    batcher.stop()
    assert [len(w) for w in seen] == [1, 1]
    # the second waited for what was left of the first's 0.2 s forward, the first for nothing
    assert seen[1][0] >= 0.2 - (t1 - t0) - 0.01
    assert 0 <= seen[0][0] < seen[1][0]


def test_an_idle_batcher_takes_a_request_slower_than_the_slo():
    fake = FakePredictor(delay_s=0.15)  # one request alone takes longer than the 100 ms SLO
    batcher = DynamicBatcher(fake.predict, max_batch=1, max_wait_ms=0, max_queue=10, slo_ms=100).start()
    for it in items(2):  # one after another: nothing ahead of either, so neither is refused
        assert batcher.submit(it).result(5).itm_prob
    batcher.submit(items(1)[0])
    with pytest.raises(QueueFull, match="slo_ms=100"):
        batcher.submit(items(1)[0])  # one ahead: 2 x 150 ms
    batcher.stop()
