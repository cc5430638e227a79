"""Hands freed host heap back to the OS, so that a process's RSS shows what it holds.

glibc keeps freed blocks below live allocations resident (and raises its mmap threshold after
large frees), so RSS after a large free depends on the heap's past; ``malloc_trim`` is the only
call that returns them, and Python's allocator has no equivalent.
"""

from __future__ import annotations

import ctypes


def release_host_heap() -> None:
    """``malloc_trim(0)``: glibc returns every whole free page of its heaps (a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
