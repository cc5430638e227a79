"""Host-side readings through psutil: CPU, memory and disk of this process and the machine.

DataLoader workers are child processes, so the process CPU figure sums this process and all its
children; otherwise a 16-worker input pipeline would look idle from the main process alone.
Finding children scans all of /proc (about 3 ms, most of a sample's cost), so the list of
children is refreshed every ``children_every_s`` seconds while known children are read each time.
"""

from __future__ import annotations

import os
import time

import psutil

GIB = 2**30


class HostProbe:
    """Reads host fields; every call reports rates over the interval since the previous call."""

    def __init__(self, pid: int | None = None, children_every_s: float = 2.0):
        self.proc = psutil.Process(pid or os.getpid())
        self.children: dict[int, psutil.Process] = {}
        self.children_every_s = children_every_s
        self.own_pid = os.getpid()  # a sampler process watching its parent must not count itself
        self.children_scanned_s = float("-inf")
        self.proc.cpu_percent(None)  # first call primes the delta and returns 0.0
        psutil.cpu_percent(None)
        self.last_t_s = time.perf_counter()
        self.last_read_bytes = self._disk_read_bytes()

    @staticmethod
    def _disk_read_bytes() -> int | None:
        try:
            io = psutil.disk_io_counters()
        except (OSError, RuntimeError):  # containers without /proc/diskstats
            return None
        return None if io is None else int(io.read_bytes)

    def _children_cpu_pct(self) -> float:
        """CPU % of child processes, keeping one Process object per pid for the delta."""
        now_s = time.perf_counter()
        if now_s - self.children_scanned_s >= self.children_every_s:
            self.children_scanned_s = now_s
            try:
                found = {c.pid: c for c in self.proc.children(recursive=True) if c.pid != self.own_pid}
            except psutil.Error:
                found = {}
            for pid in set(self.children) - set(found):
                del self.children[pid]
            for pid, child in found.items():
                if pid not in self.children:  # new child: prime now, it counts from next reading
                    self.children[pid] = child
                    try:
                        child.cpu_percent(None)
                    except psutil.Error:
                        pass
            return 0.0 if not self.children else self._read_children()
        return self._read_children()

    def _read_children(self) -> float:
        total, gone = 0.0, []
        for pid, child in self.children.items():
            try:
                total += child.cpu_percent(None)
            except psutil.Error:  # exited since the last scan
                gone.append(pid)
        for pid in gone:
            del self.children[pid]
        return total

    def read(self) -> dict:
        now_s = time.perf_counter()
        dt_s = max(now_s - self.last_t_s, 1e-6)
        self.last_t_s = now_s
        mem = psutil.virtual_memory()
        with self.proc.oneshot():
            proc_cpu_pct = self.proc.cpu_percent(None)
            rss_bytes = self.proc.memory_info().rss
        read_bytes = self._disk_read_bytes()
        if read_bytes is None or self.last_read_bytes is None:
            disk_read_mib_per_s = None
        else:
            disk_read_mib_per_s = max(read_bytes - self.last_read_bytes, 0) / dt_s / 2**20
        self.last_read_bytes = read_bytes
        return {
            # percent of one core, summed over this process and its workers (can exceed 100)
            "cpu_pct": proc_cpu_pct + self._children_cpu_pct(),
            "sys_cpu_pct": psutil.cpu_percent(None),  # whole machine, 0-100
            "rss_gib": rss_bytes / GIB,
            "avail_ram_gib": mem.available / GIB,
            "disk_read_mib_per_s": disk_read_mib_per_s,
        }
