"""``HardwareMonitor``: a background thread sampling host and GPU fields at a fixed rate.

    with HardwareMonitor(interval_s=0.2) as mon:
        train(...)
    mon.write_jsonl("runs/x/monitor.jsonl"); print(mon.summary())

By default the sampler runs in a forked child process: in a thread it would need the GIL for
every NVML and /proc call (~35 per sample), and a training loop that holds the GIL between
kernel launches made each sample wait ~100 ms on an H100 (3.7 Hz instead of 5). The child sends
its rows back at ``stop()``; marks are taken in the parent on the same monotonic clock. The
figures (``rows``, ``summary``) are complete after ``stop()``.

The sampling loop sleeps to an absolute schedule (sample k at start + k * interval), so a slow NVML call
delays one sample instead of stretching every later one. Its own cost is timed per sample
(``sample_cost_ms`` in the summary): that time is what it can take from the training loop, the
rest of the interval it sleeps. Memory is bounded by ``Timeline`` (decimation, exact stats).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

from mmscale.monitor.energy import gpu_energy_in_span_j, gpu_energy_j, joules_per_item
from mmscale.monitor.host import HostProbe, WatchedProcessGone
from mmscale.monitor.nvml import NvmlProbe
from mmscale.monitor.timeline import FieldStats, Timeline, read_rows
from mmscale.strict_json import dumps


class HardwareMonitor:
    def __init__(
        self,
        interval_s: float = 0.2,
        max_rows: int = 4096,
        use_nvml: bool = True,
        use_gpm: bool = True,
        stream_path: str | Path | None = None,
        process: bool = True,
        watch_pid: int | None = None,
    ):
        """``stream_path`` also appends every sample to a JSONL file as it is taken (full
        resolution on disk, bounded in memory); ``write_jsonl`` writes the kept rows later."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = interval_s
        self.timeline = Timeline(max_rows=max_rows)
        self.use_nvml, self.use_gpm = use_nvml, use_gpm
        self.stream_path = Path(stream_path) if stream_path else None
        self.marks: list[dict] = []
        self.first_row: dict | None = None
        self.last_row: dict | None = None
        self.cost = FieldStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._t0_s = 0.0
        self.started_unix_s = None
        self.wall_s = 0.0
        self.gpu_count = 0
        self.gpu_reason = "not started"
        self.process = process and hasattr(os, "fork")
        self.watch_pid = watch_pid
        self._child = None
        self._stream_offset = 0  # where this monitor's rows begin in a stream file appended to

    # lifecycle -------------------------------------------------------------------------------
    def start(self, t0_s: float | None = None) -> "HardwareMonitor":
        if self._thread is not None or self._child is not None:
            raise RuntimeError("monitor already started")
        if self.process:
            return self._start_child()
        self.host = HostProbe(self.watch_pid)
        self.nvml = NvmlProbe(use_gpm=self.use_gpm) if self.use_nvml else None
        self.gpu_count = len(self.nvml.handles) if self.nvml else 0
        self.gpu_reason = "" if self.gpu_count else (self.nvml.reason if self.nvml else "disabled")
        # line-buffered: every sample reaches the file whole as it is taken, so the file can be
        # read while the run goes on, and a sampler killed outright leaves no half line behind
        self._stream = self.stream_path.open("a", buffering=1) if self.stream_path else None
        self._t0_s = time.perf_counter() if t0_s is None else t0_s
        self.started_unix_s = time.time()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mmscale-monitor", daemon=True)
        self._thread.start()
        return self

    def _start_child(self) -> "HardwareMonitor":
        ctx = mp.get_context("fork")  # the child only reads NVML and /proc: no CUDA, no imports
        self._t0_s = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in parent and child
        self.started_unix_s = time.time()
        # stop is a message on the pipe, not an Event: a sampler killed inside Event.wait leaves
        # the Event's lock held, and the parent's set() would then block forever
        self._conn, child_conn = ctx.Pipe()
        if self.stream_path is not None and self.stream_path.exists():
            self._stream_offset = self.stream_path.stat().st_size
        params = dict(interval_s=self.interval_s, max_rows=self.timeline.max_rows, use_nvml=self.use_nvml,
                      use_gpm=self.use_gpm, stream_path=self.stream_path, process=False,
                      watch_pid=os.getpid())
        self._child = ctx.Process(target=_child_main, args=(child_conn, params, self._t0_s),
                                  name="mmscale-monitor", daemon=True)
        self._child.start()
        return self

    def _stop_child(self) -> None:
        try:
            self._conn.send("stop")
        except OSError:
            pass  # the sampler is gone; the loop below finds it dead
        state = None
        deadline_s = time.monotonic() + 30
        try:
            while time.monotonic() < deadline_s:  # a child killed by a signal sends nothing: do not wait it out
                if self._conn.poll(0.05):
                    state = self._conn.recv()
                    break
                if not self._child.is_alive():
                    state = self._conn.recv() if self._conn.poll(0) else None
                    break
        except (OSError, EOFError):
            state = None  # the sampler died mid-reply or its end of the pipe was reset
        self._child.join(timeout=10)
        self._child = None
        if state is None:
            state = self._state_from_stream()
        if state is None:
            self.gpu_reason = "monitor process did not report"
            return
        for key, value in state.items():
            setattr(self, key, value)

    def _state(self) -> dict:
        return {"timeline": self.timeline, "first_row": self.first_row, "last_row": self.last_row,
                "cost": self.cost, "gpu_count": self.gpu_count, "gpu_reason": self.gpu_reason,
                "wall_s": self.wall_s}

    def _state_from_stream(self) -> dict | None:
        """The figures of a sampler that ended without reporting (killed, or stopped by a SIGTERM
        to its whole process group), read back from the rows it streamed; None without a stream.
        The cost of each sample is not in the file, so ``sample_cost_ms`` stays empty."""
        if self.stream_path is None or not self.stream_path.exists():
            return None
        timeline, first_row, last_row = Timeline(max_rows=self.timeline.max_rows), None, None
        for row in read_rows(self.stream_path, self._stream_offset):
            timeline.add(row)
            first_row = first_row or row
            last_row = row
        if last_row is None:
            return None
        gpu_count = sum(1 for i in range(len(last_row)) if f"gpu{i}_util_pct" in last_row)
        return {"timeline": timeline, "first_row": first_row, "last_row": last_row, "gpu_count": gpu_count,
                "gpu_reason": "" if gpu_count else "monitor process did not report; figures read back from "
                                                   f"{self.stream_path}", "wall_s": last_row["t_s"]}

    def stop(self) -> None:
        if self._child is not None:
            self._stop_child()
            return
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.wall_s = time.perf_counter() - self._t0_s
        try:
            self.sample()  # a closing sample so counters (energy) cover the whole span
        except WatchedProcessGone:
            pass  # the rows up to its exit are the span
        if self.nvml:
            self.nvml.close()
        if self._stream:
            self._stream.close()
            self._stream = None

    def __enter__(self) -> "HardwareMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None or self._child is not None

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            try:
                self.sample()
            except WatchedProcessGone:  # its rows so far stay; the owner's stop() still collects them
                return
            k += 1
            delay_s = self._t0_s + k * self.interval_s - time.perf_counter()
            if delay_s < 0:  # fell behind (very slow NVML): skip ahead rather than burst
                k = int((time.perf_counter() - self._t0_s) / self.interval_s) + 1
                delay_s = self._t0_s + k * self.interval_s - time.perf_counter()
            self._stop.wait(max(delay_s, 0.0))

    # sampling --------------------------------------------------------------------------------
    def sample(self) -> dict:
        begin_s = time.perf_counter()
        row = {"t_s": begin_s - self._t0_s}
        row.update(self.host.read())
        if self.nvml is not None and self.nvml.available:
            row.update(self.nvml.read())
        cost_ms = (time.perf_counter() - begin_s) * 1e3
        with self._lock:
            self.timeline.add(row)
            self.cost.add(cost_ms)
            if self.first_row is None:
                self.first_row = row
            self.last_row = row
            if self._stream:
                self._stream.write(dumps(row) + "\n")
        return row

    def mark(self, label: str) -> None:
        """Note a phase boundary (e.g. 'variant=gpu_decode') on the timeline."""
        with self._lock:
            if len(self.marks) < 10_000:
                self.marks.append({"t_s": time.perf_counter() - self._t0_s, "mark": label})

    # results ---------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """The kept rows (flat dicts), always including the latest sample."""
        with self._lock:
            rows = list(self.timeline.rows)
            if self.last_row is not None and (not rows or rows[-1] is not self.last_row):
                rows.append(self.last_row)
            return rows

    def write_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            for row in self.rows():
                f.write(dumps(row) + "\n")
            for mark in self.marks:
                f.write(dumps(mark) + "\n")
        return path

    def energy_j(self) -> dict:
        """Per-GPU joules over the monitored span and their source; {} without GPUs."""
        rows = self.rows()
        out = {}
        for i in range(self.gpu_count):
            joules, source = gpu_energy_j(rows, i)
            out[f"gpu{i}"] = {"energy_j": joules, "source": source}
        return out

    def energy_in_span_j(self, start_s: float, end_s: float) -> float | None:
        """Joules all GPUs used between two ``time.perf_counter()`` / ``time.monotonic()`` readings
        (the same clock on Linux); None without GPUs or samples covering the span."""
        rows = self.rows()
        if not self.gpu_count or not rows:
            return None
        per_gpu = [gpu_energy_in_span_j(rows, i, start_s - self._t0_s, end_s - self._t0_s)[0]
                   for i in range(self.gpu_count)]
        return None if any(j is None for j in per_gpu) else sum(per_gpu)

    def joules_per_sample(self, n_samples: int) -> float | None:
        """Energy of all GPUs over the span divided by samples (or requests) processed in it."""
        per_gpu = [v["energy_j"] for v in self.energy_j().values()]
        if not per_gpu or any(j is None for j in per_gpu):
            return None
        return joules_per_item(sum(per_gpu), n_samples)

    def summary(self) -> dict:
        with self._lock:
            n = self.timeline.n_samples
            fields = self.timeline.summary()
            cost = self.cost.as_dict()
        span_s = self.wall_s if not self.running else time.perf_counter() - self._t0_s
        sources = sorted({v for k, v in (self.last_row or {}).items() if k.endswith("_activity_source")})
        interval_ms = self.interval_s * 1e3
        return {
            "n_samples": n,
            "span_s": span_s,
            "achieved_hz": (n - 1) / span_s if span_s > 0 and n > 1 else None,
            "target_hz": 1.0 / self.interval_s,
            "rows_kept": len(self.timeline.rows),
            "gpu_count": self.gpu_count,
            "gpu_note": self.gpu_reason,
            "gpu_activity_source": sources[0] if len(sources) == 1 else (sources or None),
            "sample_cost_ms": cost,
            # CPU time the sampler takes, as a share of one core: an upper bound on what it can
            # take from the training loop's Python thread (GIL) between samples
            "sampler_duty_pct": None if cost["mean"] is None else 100 * cost["mean"] / interval_ms,
            "energy": self.energy_j(),
            "fields": fields,
        }


def _child_main(conn, params: dict, t0_s: float) -> None:
    """The sampler process: sample until told to stop, then send the state back once.

    Ctrl-C reaches the whole process group; the parent stops the sampler in its own time, so the
    child ignores SIGINT rather than die with a traceback. A parent killed outright (``kill -9``)
    never stops it: the child notices its parent is gone and exits within a second instead of
    sampling forever as an orphan. SIGTERM to the whole group (``timeout``, systemd stopping a
    server) ends the sampler within a second with a closing sample and its stream file closed;
    it is not ignored, since the exit of a parent that never called ``stop()`` terminates its
    daemon children this way and then waits for them. Such a parent reads the figures back from
    the stream file (``_state_from_stream``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = []
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    parent_pid = params["watch_pid"]  # taken before the fork: a parent already gone is seen too
    monitor = HardwareMonitor(**params).start(t0_s=t0_s)
    while not conn.poll(1.0):  # the parent's "stop"
        if terminated or os.getppid() != parent_pid:
            monitor.stop()
            return
    monitor.stop()
    conn.send(monitor._state())
    conn.close()
