"""The admission gate refuses overload before the route handler, and lets everything else through."""

from __future__ import annotations

import asyncio
import json

import pytest

from mmscale.serve.app import Server, create_app
from mmscale.serve.batcher import QueueFull
from mmscale.serve.config import ServeConfig
from mmscale.serve.metrics import ServerMetrics

BODY = b"\xff\xd8\xff" + b"\0" * 4_000  # a request body the refusal never reads


class FullServer(Server):
    """An ``app.Server`` whose queue is always full (no predictor, no runner)."""

    def __init__(self, cfg):
        self.cfg, self.predictor, self.runner = cfg, None, None
        self.metrics, self.ready = ServerMetrics(), True
        self.expected_auth = f"Bearer {cfg.token}".encode() if cfg.token else None

    def admit(self):
        raise QueueFull("queue full (always, in this test)")


def match_scope(headers: list[tuple[bytes, bytes]] = ()) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/v1/match", "raw_path": b"/v1/match", "query_string": b"caption=a+dog",
            "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"image/jpeg"),
                        (b"content-length", str(len(BODY)).encode()), *headers]}


async def call(app, scope: dict) -> tuple[int, dict, bytes]:
    """One request through the ASGI app: (status, headers, body)."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(dict(scope), receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def refuse(headers=(), token=None):
    server = FullServer(ServeConfig(token=token, frontends=1, max_batch=4, max_wait_ms=1, cuda_graphs=False))

    async def unreachable(*args, **kwargs):
        raise AssertionError("the request reached the route handler")

    server.handle = unreachable
    app = create_app(None, server.cfg, server=server)
    return asyncio.run(call(app, match_scope(list(headers)))), server


def counter(server, name: str, **labels) -> float:
    return server.metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_gate_refuses_before_the_handler_with_the_documented_answer():
    (status, headers, body), server = refuse()
    assert status == 503
    assert json.loads(body)["error"]["code"] == "overloaded"
    assert headers["retry-after"] == "1" and headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert counter(server, "mmscale_rejected_total", reason="queue_full") == 1
    assert counter(server, "mmscale_requests_total", endpoint="/v1/match", status="503") == 1
    assert counter(server, "mmscale_request_latency_seconds_count", endpoint="/v1/match") == 1


def test_with_a_token_a_wrong_token_goes_on_to_the_handlers_401():
    (status, _, _), server = refuse(headers=[(b"authorization", b"Bearer s3cret")], token="s3cret")
    assert status == 503 and counter(server, "mmscale_rejected_total", reason="queue_full") == 1
    server = FullServer(ServeConfig(token="s3cret", frontends=1, max_batch=4, max_wait_ms=1, cuda_graphs=False))
    app = create_app(None, server.cfg, server=server)
    status, _, _ = asyncio.run(call(app, match_scope([(b"authorization", b"Bearer wrong")])))
    assert status == 401 and counter(server, "mmscale_rejected_total", reason="queue_full") == 0


def test_other_paths_pass_through_the_gate():
    server = FullServer(ServeConfig(frontends=1, max_batch=4, max_wait_ms=1, cuda_graphs=False))
    app = create_app(None, server.cfg, server=server)
    scope = {**match_scope(), "method": "GET", "path": "/healthz", "raw_path": b"/healthz", "query_string": b""}
    status, _, body = asyncio.run(call(app, scope))
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.mark.parametrize("path", ["/v1/match", "/v1/embed/image"])
def test_an_admitted_request_is_checked_for_admission_once(path):
    server = FullServer(ServeConfig(frontends=1, max_batch=4, max_wait_ms=1, cuda_graphs=False))
    calls = []
    server.admit = lambda: calls.append(1)  # admits; the handler then refuses the fake image body (4xx)
    app = create_app(None, server.cfg, server=server)
    status, _, _ = asyncio.run(call(app, {**match_scope(), "path": path, "raw_path": path.encode()}))
    assert calls == [1] and 400 <= status < 500
