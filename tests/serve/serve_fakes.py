"""Test doubles behind the server's interfaces, and a live server on a free loopback port."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request

from mmscale.serve.requests import Output, RequestError


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


@contextlib.contextmanager
def live_server(predictor, cfg):
    """Run the real app under uvicorn in a thread on a free loopback port; yields the base URL."""
    import uvicorn

    from mmscale.serve.app import create_app
    from mmscale.serve.run import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(predictor, cfg)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError("server did not become ready")
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
