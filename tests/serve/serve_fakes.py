"""Test doubles behind the server's interfaces, and a live server on a free loopback port."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request

from mmscale.serve.items import Output, RequestError


class FakePredictor:
    """Deterministic scores from the captions; records batch sizes; optional delay per batch."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.batches: list[tuple[str, int]] = []

    def predict(self, task, items):
        self.batches.append((task, len(items)))
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for it in items:
            if it.image_bytes is not None and it.image_bytes.startswith(b"BAD"):
                out.append(RequestError(400, "bad_image", "fake decode failure"))
            elif task == "match":
                out.append(Output(itm_prob=[len(c) / 100 for c in it.captions],
                                  itc_similarity=[0.5 for _ in it.captions]))
            elif task == "embed_image":
                out.append(Output(embeddings=[[1.0, 0.0]]))
            else:
                out.append(Output(embeddings=[[0.0, 1.0] for _ in it.captions]))
        return out


def wait_ready(url: str, timeout_s: float, alive=lambda: True, output=lambda: "") -> None:
    """Poll ``/readyz`` until it answers 200; fail at once if the server died, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert alive(), "server exited before it was ready: " + output()
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not become ready: " + output())


@contextlib.contextmanager
def live_server(predictor, cfg):
    """Run the real app under uvicorn in a thread on a free loopback port; yields the base URL."""
    import uvicorn

    from mmscale.serve.app import create_app
    from mmscale.serve.listen import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(predictor, cfg)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, 60)
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def listening_url(proc, seen: list) -> str:
    """The URL from a server subprocess's "listening on URL" line; lines before it (libraries may
    log first) go to ``seen``. Fails with what it printed if it exits first."""
    for line in iter(proc.stdout.readline, ""):
        if line.startswith("listening on "):
            return line.split()[2]
        seen.append(line)
    raise AssertionError("server exited before listening:\n" + "".join(seen))


@contextlib.contextmanager
def server_process(config: dict, *predictor_args: str, ready_timeout_s: float = 120.0):
    """``tests.serve.frontends_server`` as a subprocess; yields (process, base URL) once /readyz is 200.
    The process's output is collected in ``process.output`` (a list of lines)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    proc = subprocess.Popen([sys.executable, "-m", "tests.serve.frontends_server", json.dumps(config),
                             *predictor_args], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    proc.output = []
    try:
        url = listening_url(proc, proc.output)
        threading.Thread(target=proc.output.extend, args=(proc.stdout,), daemon=True).start()
        wait_ready(url, ready_timeout_s, alive=lambda: proc.poll() is None,
                   output=lambda: "".join(proc.output))
        yield proc, url
    finally:
        if proc.poll() is None:  # drain and clean up (its private directory too); kill if stuck
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
