"""Dynamic batching: concurrent requests share one forward pass on a dedicated inference thread.

Policy (Triton's): a batch runs when it holds ``max_batch`` requests of one task, or when its
oldest request has waited ``max_wait_ms``, whichever comes first. Requests that queued while the
previous batch ran have already waited, so under load batches fill without extra delay. The
queue is bounded in time: with ``slo_ms`` a request is refused (``QueueFull``, at once) when the
rest of the running batch, then the batches ahead of it and its own (``Backlog.wait_s``, batch
times from ``BatchCost``) would take longer than that, so what is admitted under overload still
answers within the SLO; a count bound alone lets the wait grow to ``max_queue`` / rate.
``max_queue`` stays as a memory backstop.

With ``fit`` the batch taken is ``fit(n)`` of the ``n`` ready requests (Triton's preferred batch
sizes): the server passes ``ModelPredictor.batch_size_for`` so that a compute-bound batch is not padded
from 69 rows to 96, the rest staying first in the queue for the next batch.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from mmscale.serve.batch_cost import BatchCost
from mmscale.serve.items import Item, Output, RequestError

log = logging.getLogger(__name__)

PredictFn = Callable[[str, list[Item]], list["Output | RequestError"]]
SMOOTHING = 0.2  # weight of the newest batch in the averages of served rate and batch time (slo_ms)


class QueueFull(Exception):
    """The bounded queue is full; the caller answers 503 with Retry-After."""


@dataclass
class Pending:
    item: Item
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    enqueued_s: float = field(default_factory=time.monotonic)
    taken_s: float = 0.0  # when a batch took it off the queue: taken - enqueued = its queue wait


@dataclass(frozen=True)
class Backlog:
    """What admission reads: the batcher's state at one instant, also published to the front ends."""

    depth: int = 0  # requests admitted and not yet answered
    queued: int = 0  # requests waiting for a batch
    running_until_s: float = 0.0  # when the running batch should end (monotonic; 0: none running)
    batch_s: float = 0.0  # smoothed busy time of one batch
    served_per_s: float = 0.0  # smoothed requests per second of busy time; 0 until a batch ran
    max_batch: int = 1
    fixed_s: float = 0.0  # a batch's time, fixed part (``BatchCost``; both 0 until sizes varied)
    per_request_s: float = 0.0  # a batch's time, part per request

    def batch_time_s(self, size: int) -> float:
        """How long a batch of ``size`` takes: the fitted line, or ``size`` at the served rate."""
        if self.fixed_s or self.per_request_s:
            return self.fixed_s + self.per_request_s * size
        return size / self.served_per_s

    def wait_s(self, now_s: float, in_transit: int = 0) -> float:
        """When one more request would be answered (seconds from ``now_s``; 0 until a batch has been
        timed): what is left of the running batch, then the full batches ahead of it, then its own
        batch, which takes as long as a batch up to its place or, as batches fill behind it under
        load, as long as recent batches, whichever is longer. The requests ahead (queued, and
        ``in_transit`` more on their way) are not a batch each: they share batches of up to
        ``max_batch``. Counting the newcomer alone, admission under overload let every admitted
        request wait a batch past the SLO."""
        if self.served_per_s <= 0:
            return 0.0
        full, place = divmod(self.queued + in_transit, self.max_batch)
        own_s = max(self.batch_s, self.batch_time_s(place + 1))
        return max(0.0, self.running_until_s - now_s) + full * self.batch_time_s(self.max_batch) + own_s


class DynamicBatcher:
    """Collects ``Item``s from any thread and runs ``predict(task, items)`` on its own thread."""

    def __init__(self, predict: PredictFn, max_batch: int, max_wait_ms: float, max_queue: int,
                 on_batch: Callable[..., None] | None = None, slo_ms: float = 0.0,
                 on_depth: Callable[[Backlog], None] | None = None, fit: Callable[[int], int] | None = None):
        self.predict, self.max_batch, self.max_queue = predict, max_batch, max_queue
        self.fit = fit  # n ready requests of one task -> how many of them to take (None: all)
        self.on_depth = on_depth  # called with the backlog under the lock, at every change
        self.max_wait_s = max_wait_ms / 1000.0
        self.slo_s = slo_ms / 1000.0  # 0: no bound in time
        self.on_batch = on_batch  # (task, batch_size, forward_s, queue_waits_s) for metrics
        self.queue: collections.deque[Pending] = collections.deque()
        self.cond = threading.Condition()
        self.running = 0  # requests taken off the queue, not yet answered
        self.served_per_s = 0.0  # smoothed requests per second of busy time; 0 until a batch ran
        self.batch_n = 0.0  # smoothed requests of one batch
        self.batch_s = 0.0  # smoothed busy time of one batch
        self.cost = BatchCost()  # busy time against batch size
        self.last_finish_s = 0.0  # when the last batch was answered (monotonic)
        self.running_since_s = 0.0  # when the running batch was taken off the queue
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, name="mmscale-inference", daemon=True)

    def start(self) -> "DynamicBatcher":
        self.thread.start()
        return self

    @property
    def depth(self) -> int:
        """Requests admitted and not yet answered (queued + in the running batch)."""
        return len(self.queue) + self.running

    def backlog(self) -> Backlog:
        fixed_s, per_request_s = self.cost.line() or (0.0, 0.0)
        return Backlog(self.depth, len(self.queue), self.running_since_s + self.batch_s if self.running else 0.0,
                       self.batch_s, self.served_per_s, self.max_batch, fixed_s, per_request_s)

    def expected_wait_s(self) -> float:
        """How long one more request would wait to be answered (``Backlog.wait_s``)."""
        return self.backlog().wait_s(time.monotonic())

    def publish_depth(self) -> None:
        """Tell ``on_depth`` the backlog, so front ends refuse by the same wait."""
        if self.on_depth:
            self.on_depth(self.backlog())

    def admit(self) -> None:
        """Raise ``QueueFull`` when one more request would not be served within the SLO (or the
        count backstop is reached); never while idle, and until a batch has been timed, beyond one
        batch. Cheap: called before the body is read."""
        if self.stopping:
            raise QueueFull("server is shutting down")
        if self.depth >= self.max_queue:
            raise QueueFull(f"queue full ({self.max_queue} requests)")
        if self.slo_s and not self.served_per_s and self.depth >= self.max_batch:
            raise QueueFull(f"{self.depth} requests ahead and no batch timed yet (slo_ms={1000 * self.slo_s:g})")
        wait_s = self.expected_wait_s()
        if self.slo_s and self.depth and wait_s > self.slo_s:  # an idle server takes any request
            raise QueueFull(f"{self.depth} requests ahead would take {1000 * wait_s:.0f} ms, "
                            f"more than slo_ms={1000 * self.slo_s:g}")

    def submit(self, item: Item) -> concurrent.futures.Future:
        with self.cond:
            self.admit()
            pending = Pending(item)
            self.queue.append(pending)
            self.publish_depth()
            self.cond.notify()
        return pending.future

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued, then end the threads."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.thread.join(timeout_s)

    def take_batch(self) -> list[Pending] | None:
        """Block until a batch is due; return it (all of one task), or None when stopping and empty."""
        with self.cond:
            while not self.queue:
                if self.stopping:
                    return None
                self.cond.wait()
            first = self.queue[0]
            deadline = first.enqueued_s + self.max_wait_s
            while True:  # the count that ends the wait is the count the batch is cut from
                same = sum(1 for p in self.queue if p.item.task == first.item.task)
                left_s = deadline - time.monotonic()
                if self.stopping or same >= self.max_batch or left_s <= 0:
                    break
                self.cond.wait(left_s)
            ready = min(self.max_batch, same)
            take = min(ready, max(1, self.fit(ready))) if self.fit else ready
            batch, rest = [], collections.deque()
            taken_s = time.monotonic()
            for pending in self.queue:
                if pending.item.task == first.item.task and len(batch) < take:
                    pending.taken_s = taken_s
                    batch.append(pending)
                else:
                    rest.append(pending)
            self.queue = rest
            self.running += len(batch)
            self.running_since_s = taken_s
            self.publish_depth()  # the depth is the same, but the queued requests now run
            return batch

    def loop(self) -> None:
        """One thread: take a batch, run it whole, answer it."""
        while (batch := self.take_batch()) is not None:
            task = batch[0].item.task
            start_s = time.monotonic()
            outputs = guarded(len(batch), task, "predict", self.predict, task, [p.item for p in batch])
            self.finish(batch, outputs, time.monotonic() - start_s)

    def finish(self, batch: list[Pending], outputs: list, busy_s: float) -> None:
        """Answer every request of ``batch``; update depth, the served rate and the metrics."""
        for pending, out in zip(batch, outputs):
            if isinstance(out, BaseException):
                pending.future.set_exception(out)
            else:
                pending.future.set_result(out)
        with self.cond:
            self.running -= len(batch)
            # Busy time is wall time, not the forward alone: from the previous answer (or the batch's
            # first arrival, after an idle spell) to this one, so that batching waits, the GIL and the
            # HTTP work beside the model all count against the rate admission relies on.
            now = time.monotonic()
            cycle_s = now - max(self.last_finish_s, min(p.enqueued_s for p in batch))
            self.last_finish_s = now
            if cycle_s > 0:  # the rate is the ratio of the averages, not the average of per-batch rates
                self.batch_n = smoothed(self.batch_n, len(batch))
                self.batch_s = smoothed(self.batch_s, cycle_s)
                self.served_per_s = self.batch_n / self.batch_s
                self.cost.add(len(batch), cycle_s)
            self.publish_depth()
        if self.on_batch:
            self.on_batch(batch[0].item.task, len(batch), busy_s, [p.taken_s - p.enqueued_s for p in batch])


def smoothed(average: float, value: float) -> float:
    """The exponential average of ``SMOOTHING``; the first value as it is."""
    return value if not average else SMOOTHING * value + (1 - SMOOTHING) * average


def guarded(size: int, task: str, stage: str, fn, *args) -> list:
    """``fn(*args)``, or its exception once per request: a failing batch fails alone, serving goes on."""
    try:
        return fn(*args)
    except Exception as exc:
        log.exception("%s failed for a batch of %d %s requests", stage, size, task)
        return [exc] * size


class NaiveRunner:
    """The peer a user writes first: every request runs its own forward, nothing is batched or bounded.

    Each request runs ``predict(task, [item])`` on a worker thread (what FastAPI does with a
    plain ``def`` endpoint), so concurrent requests contend for the device one forward at a time.
    """

    def __init__(self, predict: PredictFn, threads: int = 40,
                 on_batch: Callable[[str, int, float], None] | None = None):
        self.predict, self.on_batch = predict, on_batch
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="mmscale-naive")
        self.inflight = 0
        self.lock = threading.Lock()

    def start(self) -> "NaiveRunner":
        return self

    @property
    def depth(self) -> int:
        return self.inflight

    def run_one(self, item: Item):
        start_s = time.monotonic()
        try:
            (out,) = self.predict(item.task, [item])
        finally:
            with self.lock:
                self.inflight -= 1
        if self.on_batch:
            self.on_batch(item.task, 1, time.monotonic() - start_s)
        if isinstance(out, BaseException):
            raise out
        return out

    def submit(self, item: Item) -> concurrent.futures.Future:
        with self.lock:
            self.inflight += 1
        return self.pool.submit(self.run_one, item)

    def stop(self, timeout_s: float = 30.0) -> None:
        self.pool.shutdown(wait=True)


RUNNERS = {"batched": DynamicBatcher, "naive": NaiveRunner}
