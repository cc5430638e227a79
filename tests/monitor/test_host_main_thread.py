"""The main thread's own CPU share and run-queue wait (Linux schedstat): busy alone, crowded off
its CPU by busy processes on the same core, and idle read as such."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmscale.monitor.host import HostProbe

pytestmark = pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat").exists()
                                or not hasattr(os, "sched_setaffinity"), reason="needs Linux schedstat")

# in a child interpreter: pinning this process to one core must not leak into the test session.
# Each probe read is paired with the thread's CPU clock read in the same window (time.thread_time),
# so the checks hold however busy the machine is: other processes on the core lower the share the
# main thread gets, but not the agreement of two clocks or the sum of running and waiting.
SCRIPT = """
import json, multiprocessing as mp, os, time
from mmscale.monitor.host import HostProbe

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

def read(probe, last):
    row = probe.read()
    now = (time.thread_time(), time.perf_counter())
    row["thread_time_pct"] = 100.0 * (now[0] - last[0]) / (now[1] - last[1])
    return row, now

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
probe = HostProbe()
last = (time.thread_time(), time.perf_counter())
spin(0.6)
alone, last = read(probe, last)
others = [mp.get_context("fork").Process(target=spin, args=(1.6,)) for _ in range(2)]
for p in others:
    p.start()
spin(1.2)
crowded, last = read(probe, last)
for p in others:
    p.join()
time.sleep(0.6)
idle, last = read(probe, last)
print(json.dumps([alone, crowded, idle]))
"""


def test_wait_share_rises_when_the_main_thread_is_crowded_off_its_core():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    alone, crowded, idle = json.loads(out.stdout.strip().splitlines()[-1])
    for spinning in (alone, crowded):
        # the share it ran is the thread's own CPU clock over the same window
        assert spinning["main_thread_cpu_pct"] == pytest.approx(spinning["thread_time_pct"], abs=5)
        # a spinning thread is always runnable: every moment it either ran or waited for the core
        assert spinning["main_thread_cpu_pct"] + spinning["main_thread_wait_pct"] > 85
    # three busy threads share one core: the main one runs a third of the time at most (less when
    # the machine is busy too) and waits the rest
    assert crowded["main_thread_wait_pct"] > 1.5 * crowded["main_thread_cpu_pct"]
    # asleep: neither running nor waiting
    assert idle["main_thread_cpu_pct"] < 20 and idle["main_thread_wait_pct"] < 20


def test_a_too_short_interval_is_folded_into_the_next(monkeypatch):
    from mmscale.monitor import host

    probe = HostProbe()
    monkeypatch.setattr(host, "MIN_SCHEDSTAT_S", 3600.0)  # every interval is "too short" now
    first = probe.read()
    assert first["main_thread_cpu_pct"] is None and first["main_thread_wait_pct"] is None
    monkeypatch.setattr(host, "MIN_SCHEDSTAT_S", 0.0)
    folded = probe.read()  # measured from the construction, across the skipped read
    assert folded["main_thread_cpu_pct"] is not None and folded["main_thread_wait_pct"] is not None
