"""``--frontends N``: the model process (this one) supervising N HTTP front-end processes.

Why: one Python process doing HTTP parsing, limits, tokenization, asyncio futures and JSON for
every request is the throughput limit long before the GPU is (the model alone runs ~7,000
samples/s at batch 512 on H100; the single-process server ~1,500 req/s). The front ends spread
that work over cores; this process keeps the one batcher, so batches still form across all
clients and the queue bound stays global.

Lifecycle: ``run.serve`` binds the port with SO_REUSEPORT and this process keeps it bound (never
listening), so the port stays ours; every front end binds and listens on it too, and the kernel
spreads new connections over them by connection hash. (One inherited listening socket would let
one front end's accept loop take a whole burst of connections, and the load with them.) Once the
front ends close their sockets, new connections are refused. The model warms up on
a thread while the front ends start; their ``/readyz`` asks this process, so it turns 200 only
when the model is ready. SIGTERM/SIGINT: forward SIGTERM to the front ends (they stop accepting
and answer every request in flight, whose batches this process still runs), wait for them, then
drain the batcher and exit 0. A front end that exits on its own stops the whole server with an
error naming it: a half-served port would hide the failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict

from mmscale.errors import MmscaleError
from mmscale.serve.app import settle_process, warm_up
from mmscale.serve.config import DRAIN_TIMEOUT_S, FRONTEND_CONFIG_ENV, ServeConfig
from mmscale.serve.model_host import ModelHost
from mmscale.strict_json import dumps

log = logging.getLogger(__name__)

POLL_S = 0.2


class ServeError(MmscaleError):
    """The server stopped because one of its processes failed."""


def spawn_frontend(name: str, port: int, ipc_path: str, metrics_dir: str, cfg: ServeConfig,
                   board_path: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, FRONTEND_CONFIG_ENV: dumps(asdict(cfg))}
    cmd = [sys.executable, "-m", "mmscale.serve.frontend", "--port", str(port), "--ipc", ipc_path, "--name", name,
           "--depth-board", board_path]
    # A session of its own: Ctrl-C reaches this process only, which then drains the front ends in order.
    return subprocess.Popen(cmd, env=env, start_new_session=True)


def stop_frontends(children: dict[str, subprocess.Popen], timeout_s: float) -> dict[str, int]:
    """SIGTERM every live front end, wait up to ``timeout_s`` in all, kill what remains; exit codes."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    codes = {}
    for name, proc in children.items():
        try:
            codes[name] = proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.error("front end %s did not drain within %.0f s; killing it", name, timeout_s)
            proc.kill()
            codes[name] = proc.wait()
    return codes


def serve_frontends(cfg: ServeConfig, predictor, sock: socket.socket) -> None:
    """Run the model here and ``cfg.frontends`` front ends on the port of ``sock`` (bound with
    SO_REUSEPORT) until SIGTERM/SIGINT."""
    workdir = tempfile.mkdtemp(prefix="mmscale-serve-")  # mode 0700: only this user reaches the socket
    metrics_dir = os.path.join(workdir, "metrics")
    os.mkdir(metrics_dir)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    board_path = os.path.join(workdir, "depth")
    host = ModelHost(predictor, cfg, os.path.join(workdir, "model.sock"), cfg.frontends, board_path).start()
    children: dict[str, subprocess.Popen] = {}
    failure, dead = None, {}
    try:
        port = sock.getsockname()[1]
        for k in range(cfg.frontends):
            children[str(k)] = spawn_frontend(str(k), port, host.path, metrics_dir, cfg, board_path)

        def warm() -> None:
            warm_up(predictor, cfg)
            settle_process()
            host.ready = True
            log.info("model warmed up; serving through %d front ends", cfg.frontends)

        warmer = threading.Thread(target=warm, name="mmscale-warm-up", daemon=True)
        warmer.start()
        while not stop.wait(POLL_S):
            dead = {name: p.returncode for name, p in children.items() if p.poll() is not None}
            if dead:
                failure = ", ".join(f"front end {n} exited with status {c}" for n, c in dead.items())
                log.error("%s; stopping the server", failure)
                break
            if not warmer.is_alive() and not host.ready:
                failure = "model warm-up failed (see the log above)"
                break
        codes = stop_frontends(children, DRAIN_TIMEOUT_S + 10)
        bad = {n: c for n, c in codes.items() if c != 0 and n not in dead}
        if bad and not failure:
            failure = ", ".join(f"front end {n} exited with status {c} while draining" for n, c in bad.items())
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        host.stop(DRAIN_TIMEOUT_S)
        sock.close()
        shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure:
        raise ServeError(f"server stopped: {failure}")
