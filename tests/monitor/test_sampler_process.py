"""The sampler process against signals: Ctrl-C, a killed sampler, a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mmscale.monitor import HardwareMonitor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0): read its state
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_ctrl_c_to_the_process_group_does_not_kill_the_sampler():
    mon = HardwareMonitor(interval_s=0.02, use_nvml=False).start()
    time.sleep(0.1)
    os.kill(mon._child.pid, signal.SIGINT)
    time.sleep(0.1)
    mon.stop()
    assert mon.summary()["n_samples"] >= 5 and mon.gpu_reason != "monitor process did not report"


def test_a_killed_sampler_does_not_stall_stop():
    mon = HardwareMonitor(interval_s=0.02, use_nvml=False).start()
    time.sleep(0.1)
    os.kill(mon._child.pid, signal.SIGKILL)
    begin_s = time.perf_counter()
    mon.stop()
    assert time.perf_counter() - begin_s < 5  # not the 30 s a live but silent sampler is given
    assert mon.gpu_reason == "monitor process did not report" and not mon.running


def test_the_sampler_exits_when_its_parent_is_killed():
    """A training process killed with -9 must not leave a sampler running as an orphan."""
    script = ("import sys, time\nfrom mmscale.monitor import HardwareMonitor\n"
              "mon = HardwareMonitor(interval_s=0.05, use_nvml=False).start()\n"
              "print(mon._child.pid, flush=True)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.kill()
    parent.wait()
    deadline_s = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline_s:
        time.sleep(0.1)
    assert not _alive(child_pid)
