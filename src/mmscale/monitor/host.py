"""Host-side readings through psutil: CPU, memory and disk of this process and the machine.

DataLoader workers are child processes, so the process CPU figure sums this process and all its
children; otherwise a 16-worker input pipeline would look idle from the main process alone.
Finding children scans all of /proc (about 3 ms, most of a sample's cost), so the list of
children is refreshed every ``children_every_s`` seconds while known children are read each time.

The watched process's main thread (the training loop, which launches every kernel) is read apart
from the process total through Linux's per-thread ``schedstat``: the share of wall time it ran on a
CPU, and the share it was ready to run but waited for one. A step that slows while 16 input
workers keep 16 cores busy is a starved main thread exactly when that wait share rises; the process
total cannot say so. Neither psutil nor another library exposes the run-queue wait, so the file is
read directly (other systems: the two fields are None).
"""

from __future__ import annotations

import os
import time

import psutil

GIB = 2**30
MIN_SCHEDSTAT_S = 0.05  # shortest interval read for the main thread's shares (tick-granular counters)
MIN_CPU_INTERVAL_S = 0.05  # shortest interval of the first process CPU % after priming (the same ticks)


class WatchedProcessGone(RuntimeError):
    """The process a probe watches has exited (a worker killed mid-run): nothing is left to sample."""


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
        self.first_read = True
        self.last_read_bytes = self._disk_read_bytes()
        self.schedstat_path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/schedstat"
        self.last_schedstat = self._main_thread_schedstat()
        self.last_schedstat_t_s = time.perf_counter()

    @staticmethod
    def _disk_read_bytes() -> int | None:
        try:
            io = psutil.disk_io_counters()
        except (OSError, RuntimeError):  # containers without /proc/diskstats
            return None
        return None if io is None else int(io.read_bytes)

    def _main_thread_schedstat(self) -> tuple[int, int] | None:
        """(ns on a CPU, ns waiting for one) of the main thread since it started; None where the
        kernel has no such file."""
        try:
            with open(self.schedstat_path) as f:
                on_cpu_ns, waited_ns = f.read().split()[:2]
            return int(on_cpu_ns), int(waited_ns)
        except (OSError, ValueError):
            return None

    def _main_thread_pcts(self) -> tuple[float | None, float | None]:
        """% of the interval the main thread ran, and % it was runnable but waited for a CPU.
        A running thread's counters advance at scheduler ticks (a few ms), so an interval shorter
        than ``MIN_SCHEDSTAT_S`` gives None and is folded into the next one."""
        now_s = time.perf_counter()
        dt_s = now_s - self.last_schedstat_t_s
        if dt_s < MIN_SCHEDSTAT_S:
            return None, None
        now = self._main_thread_schedstat()
        last, self.last_schedstat, self.last_schedstat_t_s = self.last_schedstat, now, now_s
        if now is None or last is None:
            return None, None
        return (max(now[0] - last[0], 0) / 1e9 / dt_s * 100, max(now[1] - last[1], 0) / 1e9 / dt_s * 100)

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
            total = self._read_children()  # the children known since an earlier reading
            for pid, child in found.items():
                if pid not in self.children:  # new child: primed now, it counts from the next reading
                    # (read again at once, psutil's tick-granular delta over a microsecond interval
                    # would come back as several hundred %)
                    self.children[pid] = child
                    try:
                        child.cpu_percent(None)
                    except psutil.Error:
                        pass
            return total
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
        if self.first_read and now_s - self.last_t_s < MIN_CPU_INTERVAL_S:
            # CPU times advance in scheduler ticks: over the few ms after priming, one tick read as
            # 510% on 2 cores in the first sample, so the first reading waits out the minimum
            time.sleep(MIN_CPU_INTERVAL_S - (now_s - self.last_t_s))
            now_s = time.perf_counter()
        self.first_read = False
        dt_s = max(now_s - self.last_t_s, 1e-6)
        self.last_t_s = now_s
        mem = psutil.virtual_memory()
        try:
            with self.proc.oneshot():
                proc_cpu_pct = self.proc.cpu_percent(None)
                rss_bytes = self.proc.memory_info().rss
        except psutil.NoSuchProcess as exc:  # ZombieProcess too
            raise WatchedProcessGone(f"process {self.proc.pid} has exited") from exc
        read_bytes = self._disk_read_bytes()
        if read_bytes is None or self.last_read_bytes is None:
            disk_read_mib_per_s = None
        else:
            disk_read_mib_per_s = max(read_bytes - self.last_read_bytes, 0) / dt_s / 2**20
        self.last_read_bytes = read_bytes
        main_cpu_pct, main_wait_pct = self._main_thread_pcts()
        return {
            # percent of one core, summed over this process and its workers (can exceed 100)
            "cpu_pct": proc_cpu_pct + self._children_cpu_pct(),
            "sys_cpu_pct": psutil.cpu_percent(None),  # whole machine, 0-100
            "rss_gib": rss_bytes / GIB,
            "avail_ram_gib": mem.available / GIB,
            "disk_read_mib_per_s": disk_read_mib_per_s,
            "main_thread_cpu_pct": main_cpu_pct,  # of one core: near 100 = the loop thread is busy all the time
            "main_thread_wait_pct": main_wait_pct,  # of wall time: ready to run, no CPU free for it
        }
