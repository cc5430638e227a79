"""The model process's queue depth, shared with the front ends through one memory-mapped integer.

Why: with ``--frontends N`` the global bound (``max_queue``) is applied in the model process, which
sees a request only after its front end has read the body, checked the image, tokenized the
captions and sent it over. Under overload that made nearly every refusal cost a whole request's
front-end CPU, and admitted requests waited behind those refusals in the front ends' event loops
(H200, 2x capacity with ``--max-queue 8``: admitted p50 15 ms against 5 ms at one client). With
the depth on a shared page, a front end's admission gate refuses at the global bound before reading
the body: in the next run (another host of the same kind) admitted p50 8.0 ms, p99 11.5 ms instead
of 38.6 ms, refusal p99 3.6 ms instead of 15.6 ms (BENCHMARKS.md, serving).

The model process publishes the depth every time it changes (the batcher calls back under its
lock), so the page never sticks at the bound. It does not count requests a front end has admitted
but not yet handed over (being read, tokenized, in the socket), so front ends can admit past the
bound for that long; the model process applies the bound itself too, and refuses those.
"""

from __future__ import annotations

import ctypes
import mmap
import os

SIZE = mmap.PAGESIZE


class DepthBoard:
    """One int64 in a shared file: ``publish`` in the model process, ``read`` in the front ends."""

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
        # an aligned 8-byte slot: one machine store and load, so a reader never sees half a write
        self.slot = ctypes.c_int64.from_buffer(self.map)

    def publish(self, depth: int) -> None:
        self.slot.value = depth

    def read(self) -> int:
        return self.slot.value

    def close(self) -> None:
        del self.slot  # the buffer export must go before the map can close
        self.map.close()
