"""The model process's queue depth and expected wait, shared with the front ends on one memory-mapped page.

Why: with ``--frontends N`` admission is decided in the model process, which sees a request only
after its front end has read the body, checked the image, tokenized the captions and sent it over.
Under overload that made nearly every refusal cost a whole request's front-end CPU, and admitted
requests waited behind those refusals in the front ends' event loops. With the depth and the wait on
a shared page, a front end's admission gate refuses by the global bound and the SLO before reading
the body (docs/performance.md, Serving).

The model process publishes both every time the depth changes (the batcher calls back under its
lock), so the page never sticks. The wait is published as the monotonic time at which one more
request would be answered (``CLOCK_MONOTONIC`` is one clock for every process of the host), which
stays true while nothing changes. Requests a front end has admitted but not yet handed over are
not counted, so front ends can admit past the bound for that long; the model process applies the
bound itself too, and refuses those.
"""

from __future__ import annotations

import ctypes
import mmap
import os

SIZE = mmap.PAGESIZE


class Slots(ctypes.Structure):
    """Aligned 8-byte fields: each is one machine store and load, so a reader never sees half a write."""

    _fields_ = [("depth", ctypes.c_int64), ("answer_at_s", ctypes.c_double)]


class DepthBoard:
    """``publish`` in the model process; ``read`` and ``answer_at_s`` in the front ends."""

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

    def publish(self, depth: int, answer_at_s: float = 0.0) -> None:
        """The depth and when one more request would be answered (``time.monotonic``; 0: not known)."""
        self.slots.answer_at_s = answer_at_s
        self.slots.depth = depth

    def read(self) -> int:
        return self.slots.depth

    def answer_at_s(self) -> float:
        return self.slots.answer_at_s

    def close(self) -> None:
        del self.slots  # the buffer export must go before the map can close
        self.map.close()
