"""Refuses overload at the ASGI layer, before FastAPI routes the request.

Why: under overload most requests are refused, and each refusal still costs its front end CPU.
Through FastAPI (routing, the request object, the handler, the response class) a refusal cost
136-183 us in-process on a 2-core machine, through this gate 33-43 us, in the same runs
(BENCHMARKS.md, serving; uvicorn's HTTP parse, paid by both, not included).

The gate answers exactly what the handler would (same 503 body, ``Retry-After``, refusal and
request counters, latency) for an authorized ``POST`` to a ``/v1/`` endpoint when
``server.admit()`` refuses. Everything else goes on to the app: unauthorized requests (the
handler answers 401 first), other paths, and admitted requests, which the handler does not check
for admission a second time. Once the app is done with an admitted request the gate tells the
server (``release``), which is how a front end's count of requests in transit stays exact.
"""

from __future__ import annotations

import time

from mmscale.serve.batcher import QueueFull
from mmscale.strict_json import dumps

GATED_PATHS = frozenset({"/v1/match", "/v1/embed/image", "/v1/embed/text"})


class AdmissionGate:
    """Pure ASGI middleware (no per-request objects beyond the answer itself)."""

    def __init__(self, app, server):
        self.app, self.server = app, server

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in GATED_PATHS:
            start_s = time.perf_counter()
            given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
            if self.server.token_ok(given):
                try:
                    self.server.admit()
                except QueueFull as full:
                    err = self.server.refusal(full)
                    await send_json(send, err.status, err.as_dict(), err.headers)
                    self.server.count(scope["path"], err.status, start_s)
                    return
                try:
                    await self.app(scope, receive, send)
                finally:
                    self.server.release(scope)
                return
        await self.app(scope, receive, send)


async def send_json(send, status: int, payload: dict, headers: dict) -> None:
    body = dumps(payload, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
