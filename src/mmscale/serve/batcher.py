"""Dynamic batching: concurrent requests share one forward pass on a dedicated inference thread.

Policy (Triton's): a batch runs when it holds ``max_batch`` requests of one task, or when its
oldest request has waited ``max_wait_ms``, whichever comes first. Requests that queued while the
previous batch ran have already waited, so under load batches fill without extra delay. The
queue is bounded: past ``max_queue`` admitted requests ``submit`` raises ``QueueFull`` at once,
so overload is refused fast instead of building an unbounded backlog.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from mmscale.serve.requests import Item, Output, RequestError

log = logging.getLogger(__name__)

PredictFn = Callable[[str, list[Item]], list["Output | RequestError"]]


class QueueFull(Exception):
    """The bounded queue is full; the caller answers 503 with Retry-After."""


@dataclass
class Pending:
    item: Item
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    enqueued_s: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """Collects ``Item``s from any thread and runs ``predict(task, items)`` on its own thread."""

    def __init__(self, predict: PredictFn, max_batch: int, max_wait_ms: float, max_queue: int,
                 on_batch: Callable[[str, int, float], None] | None = None):
        self.predict, self.max_batch, self.max_queue = predict, max_batch, max_queue
        self.max_wait_s = max_wait_ms / 1000.0
        self.on_batch = on_batch  # (task, batch_size, forward_s) for metrics
        self.queue: collections.deque[Pending] = collections.deque()
        self.cond = threading.Condition()
        self.running = 0  # requests taken off the queue, not yet answered
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, name="mmscale-inference", daemon=True)

    def start(self) -> "DynamicBatcher":
        self.thread.start()
        return self

    @property
    def depth(self) -> int:
        """Requests admitted and not yet answered (queued + in the running batch)."""
        return len(self.queue) + self.running

    def submit(self, item: Item) -> concurrent.futures.Future:
        with self.cond:
            if self.stopping:
                raise QueueFull("server is shutting down")
            if self.depth >= self.max_queue:
                raise QueueFull(f"queue full ({self.max_queue} requests)")
            pending = Pending(item)
            self.queue.append(pending)
            self.cond.notify()
        return pending.future

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued, then end the thread."""
        with self.cond:
            self.stopping = True
            self.cond.notify()
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
            while not self.stopping:
                same = sum(1 for p in self.queue if p.item.task == first.item.task)
                left_s = deadline - time.monotonic()
                if same >= self.max_batch or left_s <= 0:
                    break
                self.cond.wait(left_s)
            batch, rest = [], collections.deque()
            for pending in self.queue:
                if pending.item.task == first.item.task and len(batch) < self.max_batch:
                    batch.append(pending)
                else:
                    rest.append(pending)
            self.queue = rest
            self.running = len(batch)
            return batch

    def loop(self) -> None:
        while True:
            batch = self.take_batch()
            if batch is None:
                return
            task = batch[0].item.task
            start_s = time.monotonic()
            try:
                outputs = self.predict(task, [p.item for p in batch])
            except Exception as exc:  # a bug or device failure: fail this batch, keep serving
                log.exception("predict failed for a batch of %d %s requests", len(batch), task)
                outputs = [exc] * len(batch)
            forward_s = time.monotonic() - start_s
            for pending, out in zip(batch, outputs):
                if isinstance(out, BaseException):
                    pending.future.set_exception(out)
                else:
                    pending.future.set_result(out)
            with self.cond:
                self.running = 0
            if self.on_batch:
                self.on_batch(task, len(batch), forward_s)


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
