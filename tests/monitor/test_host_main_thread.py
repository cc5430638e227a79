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

# in a child interpreter: pinning this process to one core must not leak into the test session
SCRIPT = """
import json, multiprocessing as mp, os, time
from mmscale.monitor.host import HostProbe

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
probe = HostProbe()
spin(0.6)
alone = probe.read()
others = [mp.get_context("fork").Process(target=spin, args=(1.6,)) for _ in range(2)]
for p in others:
    p.start()
spin(1.2)
crowded = probe.read()
for p in others:
    p.join()
time.sleep(0.6)
idle = probe.read()
print(json.dumps([alone, crowded, idle]))
"""


def test_wait_share_rises_when_the_main_thread_is_crowded_off_its_core():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    alone, crowded, idle = json.loads(out.stdout.strip().splitlines()[-1])
    assert alone["main_thread_cpu_pct"] > 40  # spinning alone on its core (a loaded machine shares it)
    # three busy threads share one core: the main one runs about a third of the time, waits the rest
    assert crowded["main_thread_wait_pct"] > 30 and crowded["main_thread_cpu_pct"] < 70
    assert crowded["main_thread_wait_pct"] > alone["main_thread_wait_pct"] + 20
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
