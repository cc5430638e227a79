"""``mmscale serve --monitor FILE``: a real server process streams its hardware timeline, and a
drained SIGTERM (to the server, or to its whole process group) stops the sampler process, ends
the file with whole lines and prints the summary line."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from mmscale.errors import ConfigError
from mmscale.serve.monitoring import prepare_monitor_file
from tests.serve.conftest import jpeg
from tests.serve.serve_fakes import listening_url, wait_ready

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
HOST_FIELDS = {"t_s", "cpu_pct", "sys_cpu_pct", "rss_gib", "avail_ram_gib", "disk_read_mib_per_s"}


def start(cmd: list[str], new_session: bool = False) -> tuple[subprocess.Popen, str, list[str], list[int]]:
    """The server process, its URL, its output lines (kept being read) and the pids of its child
    processes once it listens (the sampler, which starts before the port is bound)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=new_session)
    output: list[str] = []
    url = listening_url(proc, output)
    threading.Thread(target=output.extend, args=(proc.stdout,), daemon=True).start()
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    wait_ready(url, 120, alive=lambda: proc.poll() is None, output=lambda: "".join(output))
    return proc, url, output, children


def match(url: str) -> int:
    return httpx.post(f"{url}/v1/match", content=jpeg(), params={"caption": ["a dog"]},
                      headers={"content-type": "image/jpeg"}, timeout=30).status_code


def wait_lines(path: Path, n: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(path.read_text().splitlines()) < n:
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def check_timeline(path: Path, output: list[str], sampler_pids: list[int]) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]  # every line whole
    assert len(rows) >= 2 and all(HOST_FIELDS <= set(row) for row in rows)
    assert all(b["t_s"] > a["t_s"] for a, b in zip(rows, rows[1:]))
    assert all(row["rss_gib"] > 0.01 for row in rows)  # the server holds more than 10 MiB
    summary = [line for line in output if line.startswith("hardware: ")]
    assert len(summary) == 1 and summary[0].endswith(f" ({path})\n")
    assert summary[0].startswith(f"hardware: {len(rows)} samples, host CPU "
                                 f"{min(r['sys_cpu_pct'] for r in rows):.0f}-{max(r['sys_cpu_pct'] for r in rows):.0f}%")
    waits = [r["main_thread_wait_pct"] for r in rows if r.get("main_thread_wait_pct") is not None]
    if waits:  # Linux: the server's main thread, as the file holds it
        assert f"main thread waiting for a core {min(waits):.0f}-{max(waits):.0f}%" in summary[0]
    assert not [pid for pid in sampler_pids if alive(pid)]
    return rows


def test_serve_cli_writes_a_timeline_and_stops_its_sampler_on_sigterm(tmp_path):
    path = tmp_path / "runs" / "monitor.jsonl"  # the folder is made
    proc, url, output, children = start([sys.executable, "-m", "mmscale.cli", "serve", "--preset", "tiny",
                                         "--device", "cpu", "--port", "0", "--monitor", str(path),
                                         "--monitor-interval", "0.05"])
    try:
        assert len(children) == 1  # the sampler process, running before the first request
        assert match(url) == 200
        wait_lines(path, 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.2)  # the output reader catches the last line
    check_timeline(path, output, children)


def test_sigterm_to_the_process_group_with_front_ends_keeps_the_figures(tmp_path):
    """``timeout`` and systemd signal the whole group: the sampler ends before the server drains."""
    path = tmp_path / "monitor.jsonl"
    path.write_text("an earlier run's timeline\n")  # emptied at start
    config = {"monitor_file": str(path), "monitor_interval_s": 0.05, "frontends": 2, "max_wait_ms": 0}
    proc, url, output, children = start([sys.executable, "-m", "tests.serve.frontends_server",
                                         json.dumps(config), "fake", "0"], new_session=True)
    try:
        assert match(url) == 200
        wait_lines(path, 3)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    rows = check_timeline(path, output, children)
    assert max(row["cpu_pct"] for row in rows) > 0  # the server with its front ends did work


def test_an_unwritable_monitor_file_is_refused_naming_the_flag(tmp_path):
    with pytest.raises(ConfigError, match="serve --monitor.*cannot write"):
        prepare_monitor_file(str(tmp_path))  # a folder
    with pytest.raises(ConfigError, match="serve --monitor.*must not be empty"):
        prepare_monitor_file("")
    assert prepare_monitor_file(None) is None
