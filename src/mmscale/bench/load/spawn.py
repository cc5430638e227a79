"""``bench load --spawn``: start ``mmscale serve`` (or a peer server's command) as a subprocess on a
free loopback port, and wait until it answers ready."""

from __future__ import annotations

import os
import signal
import collections
import subprocess
import sys
import threading
import time
import urllib.request

from mmscale.errors import MmscaleError


class ServerStartError(MmscaleError):
    """The spawned server exited or never became ready."""


class SpawnedServer:
    """Context manager: the server process, its URL, and a clean SIGTERM on exit."""

    def __init__(self, serve_args: list[str], ready_timeout_s: float = 300.0, env: dict | None = None,
                 command: list[str] | None = None, ready_path: str = "/readyz"):
        """``command`` replaces ``mmscale serve ... serve_args`` (a peer server that prints
        ``listening on URL`` like ours); ``ready_path`` answers 200 once it is ready."""
        self.serve_args, self.ready_timeout_s = serve_args, ready_timeout_s
        self.command, self.ready_path = command, ready_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> "SpawnedServer":
        cmd = self.command or [sys.executable, "-m", "mmscale.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                               *self.serve_args]
        # a peer in its own process group: its worker processes are stopped with it
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=self.env, start_new_session=self.command is not None)
        deadline = time.monotonic() + self.ready_timeout_s
        lines = []
        for line in self.proc.stdout:  # "listening on http://127.0.0.1:PORT (...)"
            lines.append(line)
            if line.startswith("listening on "):
                self.url = line.split()[2]
                break
        if not self.url:
            self.proc.wait()
            raise ServerStartError(f"server exited ({self.proc.returncode}): {''.join(lines)[-2000:]}")
        # keep reading the server's output, or a full pipe would block it mid-benchmark
        self.tail = collections.deque(lines, maxlen=200)
        threading.Thread(target=self.tail.extend, args=(self.proc.stdout,), daemon=True).start()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(f"server exited ({self.proc.returncode}) before it was ready: "
                                       f"{''.join(self.tail)[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"server not ready after {self.ready_timeout_s:.0f} s")

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.command is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # whatever the peer left behind
            except (ProcessLookupError, PermissionError):
                pass
        return self.proc.returncode if self.proc else None

    def __exit__(self, *exc) -> None:
        self.stop()
