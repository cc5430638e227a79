"""HardwareMonitor on a CPU-only machine: fields, rate, stopping, bounded memory, timeline file."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from mmscale.monitor import HardwareMonitor, Timeline
from mmscale.monitor.host import HostProbe
from tests.monitor.test_sampler_process import wait_for_lines

HOST_FIELDS = {"t_s", "cpu_pct", "sys_cpu_pct", "rss_gib", "avail_ram_gib", "disk_read_mib_per_s"}


def test_samples_host_fields_without_gpu(tmp_path):
    with HardwareMonitor(interval_s=0.05, use_nvml=False, stream_path=tmp_path / "t.jsonl") as mon:
        wait_for_lines(tmp_path / "t.jsonl", 5)  # not a fixed sleep: a busy machine samples late
    rows = mon.rows()
    assert len(rows) >= 5
    assert HOST_FIELDS <= set(rows[0])
    assert not any(k.startswith("gpu") for k in rows[0])
    assert all(r["rss_gib"] > 0.01 for r in rows)  # this Python process holds > 10 MiB
    assert all(b["t_s"] > a["t_s"] for a, b in zip(rows, rows[1:]))
    summary = mon.summary()
    assert summary["gpu_count"] == 0 and summary["gpu_note"] == "disabled"
    assert summary["fields"]["rss_gib"]["n"] == summary["n_samples"] == len(rows)
    assert summary["energy"] == {} and mon.joules_per_sample(10) is None


def test_the_sampler_process_keeps_sampling_while_this_process_holds_the_gil(tmp_path):
    """Its rate and cost are targets on a quiet machine: ``mmscale.bench.monitor_rate``."""
    stream = tmp_path / "t.jsonl"
    with HardwareMonitor(interval_s=0.1, stream_path=stream) as mon:  # NVML is tried and, here, absent
        deadline_s = time.perf_counter() + 60
        while not (stream.exists() and len(stream.read_text().splitlines()) >= 5):
            assert time.perf_counter() < deadline_s, "fewer than 5 samples in 60 s of holding the GIL"
            end = time.perf_counter() + 0.05
            while time.perf_counter() < end:  # pure-Python busy work, as a training loop does
                sum(range(200))
    s = mon.summary()
    assert s["n_samples"] >= 5 and s["achieved_hz"] > 0 and 0 < s["sampler_duty_pct"]
    assert s["target_hz"] == pytest.approx(10.0)


def test_child_process_cpu_is_counted():
    """A busy child (as a DataLoader worker is) shows up in the process CPU figure."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_spin_and_report, args=(1.2, send))
    with HardwareMonitor(interval_s=0.1, use_nvml=False, process=False) as mon:
        mon.host.children_every_s = 0.0  # rescan at every sample so the child is seen at once
        proc.start()
        child_pct = receive.recv()
        proc.join()
    # the child's own CPU clock over the same time: on a busy machine it gets less than a core,
    # and the monitor must see what it got (this process alone sleeps in join)
    assert child_pct > 5, "the machine gave the child almost no CPU: nothing to measure"
    assert max(r["cpu_pct"] for r in mon.rows()) > 0.5 * child_pct


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _spin_and_report(seconds: float, conn) -> None:
    """Spin, then send the share of a core this process got (its CPU clock over the wall clock)."""
    cpu_s, wall_s = time.process_time(), time.perf_counter()
    _spin(seconds)
    conn.send(100.0 * (time.process_time() - cpu_s) / (time.perf_counter() - wall_s))


@pytest.mark.parametrize("process", [True, False])
def test_stop_ends_the_sampler_and_sampling(process):
    import multiprocessing as mp

    mon = HardwareMonitor(interval_s=0.02, use_nvml=False, process=process).start()
    time.sleep(0.1)
    mon.stop()
    assert not mon.running
    assert not any(t.name == "mmscale-monitor" for t in threading.enumerate())
    assert not any(p.name == "mmscale-monitor" for p in mp.active_children())
    n = mon.summary()["n_samples"]
    time.sleep(0.1)
    assert mon.summary()["n_samples"] == n
    mon.stop()  # idempotent


def test_memory_is_bounded_but_spans_the_run():
    timeline = Timeline(max_rows=16)
    for k in range(1000):
        timeline.add({"t_s": float(k), "x": float(k % 7)})
    assert len(timeline.rows) < 16
    assert timeline.rows[0]["t_s"] == 0.0 and timeline.rows[-1]["t_s"] > 999 - timeline.stride
    gaps = {b["t_s"] - a["t_s"] for a, b in zip(timeline.rows, timeline.rows[1:])}
    assert len(gaps) == 1  # evenly decimated
    stats = timeline.summary()
    assert stats["x"]["n"] == 1000 and stats["x"]["max"] == 6.0  # exact over every sample
    assert stats["t_s"]["mean"] == pytest.approx(499.5)


def test_monitor_rows_bounded_and_include_latest():
    with HardwareMonitor(interval_s=0.01, max_rows=8, use_nvml=False) as mon:
        time.sleep(0.3)
    rows = mon.rows()
    assert len(rows) <= 9
    assert rows[-1] is mon.last_row and mon.summary()["n_samples"] > 9


def test_timeline_files(tmp_path):
    stream = tmp_path / "stream.jsonl"
    with HardwareMonitor(interval_s=0.02, use_nvml=False, stream_path=stream) as mon:
        mon.mark("phase=a")
        time.sleep(0.1)
    out = mon.write_jsonl(tmp_path / "sub" / "monitor.jsonl")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {"mark": "phase=a"}.items() <= lines[-1].items()
    assert all("cpu_pct" in x for x in lines[:-1])
    streamed = [json.loads(x) for x in stream.read_text().splitlines()]
    assert len(streamed) == mon.summary()["n_samples"]


def test_streamed_samples_can_be_read_while_the_monitor_runs(tmp_path):
    """A server's timeline is read while it serves: each sample is on disk, whole, once taken."""
    stream = tmp_path / "stream.jsonl"
    with HardwareMonitor(interval_s=0.02, use_nvml=False, stream_path=stream):
        time.sleep(0.2)
        text = stream.read_text()
    assert text.endswith("\n") and len([json.loads(x) for x in text.splitlines()]) >= 3


def test_bad_interval_is_refused():
    with pytest.raises(ValueError):
        HardwareMonitor(interval_s=0)


def test_a_watched_process_that_vanishes_ends_sampling_without_a_traceback():
    """A torchrun worker killed mid-run: the thread watching it stops quietly, its rows kept."""
    import subprocess
    import sys

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    crashed = []
    previous_hook, threading.excepthook = threading.excepthook, crashed.append
    try:
        monitor = HardwareMonitor(interval_s=0.05, use_nvml=False, process=False, watch_pid=worker.pid).start()
        time.sleep(0.2)
        worker.kill()
        worker.wait()
        monitor._thread.join(timeout=5)
        assert not monitor._thread.is_alive()
        monitor.stop()
    finally:
        threading.excepthook = previous_hook
    assert crashed == []
    assert monitor.rows()  # samples taken while it lived


class PrimedOnce:
    """A child whose first cpu_percent primes (0.0) and whose next, read at once, spikes."""

    def __init__(self, pid):
        self.pid, self.calls = pid, 0

    def cpu_percent(self, interval=None):
        self.calls += 1
        return 0.0 if self.calls == 1 else 900.0  # a tick over a microsecond, as psutil reports it


class FakeParent:
    def __init__(self, children):
        self.kids = children

    def children(self, recursive=False):
        return self.kids


def test_a_new_child_counts_from_the_reading_after_it_was_seen():
    probe = HostProbe(children_every_s=0.0)
    child = PrimedOnce(pid=-7)
    probe.proc = FakeParent([child])
    assert probe._children_cpu_pct() == 0.0 and child.calls == 1  # primed, not read in the same scan
    assert probe._children_cpu_pct() == 900.0  # read at the next reading


def test_a_reading_right_after_priming_waits_for_a_measurable_interval():
    probe = HostProbe()
    started = time.perf_counter()
    fields = probe.read()  # at once: a few microseconds after the probe primed its counters
    assert time.perf_counter() - started >= 0.04
    assert 0 <= fields["cpu_pct"] <= 100 * (os.cpu_count() or 1) * 1.05
