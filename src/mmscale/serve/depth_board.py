"""The model process's queue and expected wait, shared with the front ends on one memory-mapped page.

Why: with ``--frontends N`` admission is decided in the model process, which sees a request only
after its front end has read the body, checked the image, tokenized the captions and sent it over.
Under overload that made nearly every refusal cost a whole request's front-end CPU, and admitted
requests waited behind those refusals in the front ends' event loops. With the queue and the wait on
a shared page, a front end's admission gate refuses by the global bound and the SLO before reading
the body (docs/performance.md, Serving).

The model process publishes its backlog (depth, queue, when the running batch ends, batch time,
served rate, max batch and the fitted batch cost, ``batcher.Backlog``) every time the depth changes
or a batch is taken (the batcher calls back under its lock), so the page never sticks;
``CLOCK_MONOTONIC`` is one clock for every process of the host. Requests admitted by the front ends
and not yet read by the model process are on the page too: each front end counts what it admitted
and did not drop in its own slot (``handed``), the model process counts what it read
(``received``); the difference is in transit, and the gate adds it to the queue.
Every slot has one writer, so no lock crosses processes.
"""

from __future__ import annotations

import ctypes
import mmap
import os

from mmscale.serve.batcher import Backlog

SIZE = mmap.PAGESIZE
MAX_FRONTENDS = 256  # handed slots on the page; ServeConfig refuses more front ends


class Slots(ctypes.Structure):
    """Aligned 8-byte fields: each is one machine store and load, so a reader never sees half a write."""

    _fields_ = [("depth", ctypes.c_int64), ("queued", ctypes.c_int64), ("running_until_s", ctypes.c_double),
                ("batch_s", ctypes.c_double), ("served_per_s", ctypes.c_double), ("max_batch", ctypes.c_int64),
                ("fixed_s", ctypes.c_double), ("per_request_s", ctypes.c_double),
                ("received", ctypes.c_int64), ("handed", ctypes.c_int64 * MAX_FRONTENDS)]


class DepthBoard:
    """``publish`` and ``count_received`` in the model process; ``hand`` and the reads in the front ends."""

    def __init__(self, path: str, create: bool = False):
        self.path = path
        if create:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.ftruncate(fd, SIZE)
        else:
            fd = os.open(path, os.O_RDWR)
        try:
            self.map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self.slots = Slots.from_buffer(self.map)

    def publish(self, backlog: Backlog) -> None:
        """The batcher's backlog; a reader between two stores sees fields a change apart, which
        admission, an estimate, tolerates."""
        self.slots.queued, self.slots.running_until_s = backlog.queued, backlog.running_until_s
        self.slots.batch_s, self.slots.served_per_s = backlog.batch_s, backlog.served_per_s
        self.slots.max_batch = backlog.max_batch
        self.slots.fixed_s, self.slots.per_request_s = backlog.fixed_s, backlog.per_request_s
        self.slots.depth = backlog.depth

    def count_received(self, total: int) -> None:
        """Requests the model process has read from every front end, since the page was created."""
        self.slots.received = total

    def hand(self, frontend: int, total: int) -> None:
        """Requests front end ``frontend`` admitted and did not drop before sending, since it started."""
        self.slots.handed[frontend] = total

    def backlog(self) -> Backlog:
        slots = self.slots
        return Backlog(slots.depth, slots.queued, slots.running_until_s, slots.batch_s, slots.served_per_s,
                       max(1, slots.max_batch), slots.fixed_s, slots.per_request_s)

    def in_transit(self, frontends: int) -> int:
        """Requests admitted by the first ``frontends`` front ends that the model process has not read yet."""
        return max(0, sum(self.slots.handed[:frontends]) - self.slots.received)

    def close(self) -> None:
        del self.slots  # the buffer export must go before the map can close
        self.map.close()
