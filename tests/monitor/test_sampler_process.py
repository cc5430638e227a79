"""The sampler process against signals: Ctrl-C, SIGTERM, a killed sampler, a killed parent."""

from __future__ import annotations

import json
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


def wait_for_lines(path, count: int, timeout_s: float = 60.0) -> int:
    """Wait until the sampler has streamed ``count`` lines to ``path`` (a busy machine starts it late
    and samples it less often than asked); returns how many there are."""
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        lines = len(path.read_text().splitlines()) if path.exists() else 0
        if lines >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"the sampler streamed fewer than {count} lines in {timeout_s:.0f} s")


def test_ctrl_c_to_the_process_group_does_not_kill_the_sampler(tmp_path):
    stream = tmp_path / "timeline.jsonl"
    mon = HardwareMonitor(interval_s=0.02, use_nvml=False, stream_path=stream).start()
    before = wait_for_lines(stream, 3)
    os.kill(mon._child.pid, signal.SIGINT)
    wait_for_lines(stream, before + 3)  # still sampling after the Ctrl-C
    mon.stop()
    assert mon.summary()["n_samples"] >= before + 3 and mon.gpu_reason != "monitor process did not report"


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


def test_sigterm_ends_the_sampler_whole_and_stop_reads_its_figures_back(tmp_path):
    """SIGTERM to a server's process group (``timeout``, systemd) reaches the sampler before the
    server has drained: the sampler closes its file and exits, and the figures are not lost."""
    stream = tmp_path / "timeline.jsonl"
    stream.write_text('{"t_s": 0.0, "cpu_pct": 1000.0}\n')  # an earlier run's row: not this monitor's
    mon = HardwareMonitor(interval_s=0.02, use_nvml=False, stream_path=stream).start()
    wait_for_lines(stream, 1 + 5)
    os.kill(mon._child.pid, signal.SIGTERM)
    mon._child.join(timeout=5)
    assert mon._child.exitcode == 0  # exited on its own, cleanly, not killed by the signal
    mon.stop()
    lines = stream.read_text().splitlines()[1:]
    rows = [json.loads(line) for line in lines]  # every line whole
    summary = mon.summary()
    assert summary["n_samples"] == len(rows) >= 5 and summary["fields"]["cpu_pct"]["max"] < 1000
    assert mon.last_row == rows[-1] and summary["span_s"] == rows[-1]["t_s"]


def test_a_killed_sampler_with_a_stream_still_has_figures(tmp_path):
    stream = tmp_path / "timeline.jsonl"
    mon = HardwareMonitor(interval_s=0.02, use_nvml=False, stream_path=stream).start()
    wait_for_lines(stream, 5)
    os.kill(mon._child.pid, signal.SIGKILL)
    mon.stop()
    assert mon.summary()["n_samples"] == len(stream.read_text().splitlines()) >= 5
    assert "read back" in mon.gpu_reason
