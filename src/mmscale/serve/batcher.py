"""Dynamic batching: concurrent requests share one forward pass on a dedicated inference thread.

Policy (Triton's): a batch runs when it holds ``max_batch`` requests of one task, or when its
oldest request has waited ``max_wait_ms``, whichever comes first. Requests that queued while the
previous batch ran have already waited, so under load batches fill without extra delay. The
queue is bounded: past ``max_queue`` admitted requests ``submit`` raises ``QueueFull`` at once,
so overload is refused fast instead of building an unbounded backlog. With ``max_queue_ms`` the
bound is also in time: a request is refused when the queue ahead of it would take longer than
that to serve at the recently measured rate, so what is admitted under overload still answers
in bounded time (a count bound alone lets the wait grow to ``max_queue`` / rate).

With ``fit`` the batch taken is ``fit(n)`` of the ``n`` ready requests (Triton's preferred batch
sizes): the server passes ``ModelPredictor.batch_size_for`` so that a compute-bound batch is not padded
from 69 rows to 96, the rest staying first in the queue for the next batch.

With ``stages=(prepare, execute)`` a batch's work runs as a two-stage pipeline on two threads:
while the device runs batch N (``execute``), batch N+1 is decoded and tokenized (``prepare``);
batch N+1 is taken off the queue when batch N starts, not earlier. It is off by default
(``serve.prepare_ahead``): on one H100 with the ``base`` model the single loop served more
(BENCHMARKS.md, serving), because the model process is bound by Python work, not the device.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from mmscale.serve.requests import Item, Output, RequestError

log = logging.getLogger(__name__)

PredictFn = Callable[[str, list[Item]], list["Output | RequestError"]]
PrepareFn = Callable[[str, list[Item]], Any]  # -> what ``execute`` takes
ExecuteFn = Callable[[Any], list["Output | RequestError"]]
RATE_SMOOTHING = 0.2  # weight of the newest batch in the served-rate average (max_queue_ms)


class QueueFull(Exception):
    """The bounded queue is full; the caller answers 503 with Retry-After."""


@dataclass
class Pending:
    item: Item
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    enqueued_s: float = field(default_factory=time.monotonic)
    taken_s: float = 0.0  # when a batch took it off the queue: taken - enqueued = its queue wait


class DynamicBatcher:
    """Collects ``Item``s from any thread and runs ``predict(task, items)`` on its own thread."""

    def __init__(self, predict: PredictFn, max_batch: int, max_wait_ms: float, max_queue: int,
                 on_batch: Callable[..., None] | None = None,
                 stages: tuple[PrepareFn, ExecuteFn] | None = None, max_queue_ms: float = 0.0,
                 on_depth: Callable[[int], None] | None = None, fit: Callable[[int], int] | None = None):
        self.predict, self.max_batch, self.max_queue = predict, max_batch, max_queue
        self.fit = fit  # n ready requests of one task -> how many of them to take (None: all)
        self.on_depth = on_depth  # called with the new depth under the lock, at every change
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_s = max_queue_ms / 1000.0  # 0: no bound in time
        self.on_batch = on_batch  # (task, batch_size, execute_s, prepare_s, queue_waits_s) for metrics
        self.queue: collections.deque[Pending] = collections.deque()
        self.cond = threading.Condition()
        self.running = 0  # requests taken off the queue, not yet answered
        self.served_per_s = 0.0  # smoothed requests per second of busy time; 0 until a batch ran
        self.stopping = False
        self.stages = stages
        if stages is None:
            self.threads = [threading.Thread(target=self.loop, name="mmscale-inference", daemon=True)]
        else:
            self.handoff: queue.Queue = queue.Queue()
            # The next batch is taken only once the executor has started the one before it: taken
            # earlier, it would hold only what arrived during one prepare and then wait anyway.
            self.may_take = threading.Semaphore(1)
            self.threads = [threading.Thread(target=self.prepare_loop, name="mmscale-prepare", daemon=True),
                            threading.Thread(target=self.execute_loop, name="mmscale-inference", daemon=True)]

    def start(self) -> "DynamicBatcher":
        for thread in self.threads:
            thread.start()
        return self

    @property
    def depth(self) -> int:
        """Requests admitted and not yet answered (queued + in the running batch)."""
        return len(self.queue) + self.running

    def expected_wait_s(self) -> float:
        """How long the requests admitted so far take to serve at the measured rate (0: unmeasured)."""
        return self.depth / self.served_per_s if self.served_per_s > 0 else 0.0

    def submit(self, item: Item) -> concurrent.futures.Future:
        with self.cond:
            if self.stopping:
                raise QueueFull("server is shutting down")
            if self.depth >= self.max_queue:
                raise QueueFull(f"queue full ({self.max_queue} requests)")
            if self.max_queue_s and self.expected_wait_s() > self.max_queue_s:
                raise QueueFull(f"queue full: {self.depth} requests ahead would take "
                                f"{1000 * self.expected_wait_s():.0f} ms, more than max_queue_ms="
                                f"{1000 * self.max_queue_s:g}")
            pending = Pending(item)
            self.queue.append(pending)
            if self.on_depth:
                self.on_depth(self.depth)
            self.cond.notify()
        return pending.future

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued, then end the threads."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

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
            return batch

    def loop(self) -> None:
        """One thread: take a batch, run it whole, answer it."""
        while (batch := self.take_batch()) is not None:
            task = batch[0].item.task
            start_s = time.monotonic()
            outputs = guarded(len(batch), task, "predict", self.predict, task, [p.item for p in batch])
            self.finish(batch, outputs, time.monotonic() - start_s, 0.0)

    def prepare_loop(self) -> None:
        """Pipeline stage 1: take a batch and prepare it while the previous one executes."""
        prepare = self.stages[0]
        while self.may_take.acquire() and (batch := self.take_batch()) is not None:
            task = batch[0].item.task
            start_s = time.monotonic()
            try:
                prepared, failure = prepare(task, [p.item for p in batch]), None
            except Exception as exc:  # a bug or device failure: fail this batch, keep serving
                log.exception("prepare failed for a batch of %d %s requests", len(batch), task)
                prepared, failure = None, exc
            self.handoff.put((batch, prepared, failure, time.monotonic() - start_s))
        self.handoff.put(None)

    def execute_loop(self) -> None:
        """Pipeline stage 2: run prepared batches on the device and answer them, in order."""
        execute = self.stages[1]
        while (handed := self.handoff.get()) is not None:
            self.may_take.release()
            batch, prepared, failure, prepare_s = handed
            start_s = time.monotonic()
            if failure is None:
                outputs = guarded(len(batch), batch[0].item.task, "execute", execute, prepared)
            else:
                outputs = [failure] * len(batch)
            self.finish(batch, outputs, time.monotonic() - start_s, prepare_s)

    def finish(self, batch: list[Pending], outputs: list, execute_s: float, prepare_s: float) -> None:
        """Answer every request of ``batch``; update depth, the served rate and the metrics."""
        for pending, out in zip(batch, outputs):
            if isinstance(out, BaseException):
                pending.future.set_exception(out)
            else:
                pending.future.set_result(out)
        # a pipeline serves at the pace of its slower stage; one loop at the sum of both
        busy_s = max(execute_s, prepare_s) if self.stages else execute_s + prepare_s
        with self.cond:
            self.running -= len(batch)
            if self.on_depth:
                self.on_depth(self.depth)
            if busy_s > 0:
                rate = len(batch) / busy_s
                self.served_per_s = rate if not self.served_per_s else (
                    RATE_SMOOTHING * rate + (1 - RATE_SMOOTHING) * self.served_per_s)
        if self.on_batch:
            self.on_batch(batch[0].item.task, len(batch), execute_s, prepare_s,
                          [p.taken_s - p.enqueued_s for p in batch])


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
