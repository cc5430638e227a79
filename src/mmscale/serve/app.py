"""The HTTP layer: FastAPI routes around a runner (``batched`` or ``naive``) and a predictor.

Handlers take the raw ``Request`` and return plain JSON responses: no per-request pydantic
validation on the hot path (the schemas in ``schemas.py`` document the payloads in OpenAPI).
Every refusal is decided before model work: auth, queue depth (503 at once), body size, then
the image header and captions (``codec.decode_request``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import logging
import os
import sys
import time

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response

from mmscale.serve import schemas
from mmscale.serve.batcher import RUNNERS, QueueFull
from mmscale.serve.codec import decode_request, encode_response
from mmscale.serve.config import ServeConfig
from mmscale.serve.gate import ADMITTED, AdmissionGate
from mmscale.serve.metrics import ServerMetrics
from mmscale.serve.requests import Item, RequestError
from mmscale.strict_json import dumps

log = logging.getLogger(__name__)


def json_response(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    body = dumps(payload, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit_bytes``."""
    too_big = RequestError(413, "limit_exceeded", f"body is larger than max_body_bytes={limit_bytes}",
                           limit="max_body_bytes")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit_bytes:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def make_runner(predictor, cfg: ServeConfig, metrics: ServerMetrics, on_depth=None):
    """The runner ``cfg.server`` names, around ``predictor.predict`` (or its two stages, when the
    predictor has them and ``prepare_ahead`` is on). ``on_depth``: told every new queue depth."""
    if cfg.server == "batched":
        stages = None
        if cfg.prepare_ahead and hasattr(predictor, "prepare") and hasattr(predictor, "execute"):
            stages = (predictor.prepare, predictor.execute)
        fit = None
        if cfg.trim_batches_above and hasattr(predictor, "batch_size_for"):
            fit = functools.partial(predictor.batch_size_for, above=cfg.trim_batches_above)
        return RUNNERS["batched"](predictor.predict, cfg.max_batch, cfg.max_wait_ms, cfg.max_queue,
                                  on_batch=metrics.on_batch, stages=stages, max_queue_ms=cfg.max_queue_ms,
                                  on_depth=on_depth, fit=fit)
    return RUNNERS["naive"](predictor.predict, on_batch=metrics.on_batch)


class Server:
    """One server instance: config, predictor, runner, metrics, readiness.

    The hooks ``start``/``stop``/``readiness``/``render_metrics`` are what a front-end process
    (``frontend.FrontendServer``) replaces to talk to the model process instead.
    """

    def __init__(self, predictor, cfg: ServeConfig):
        self.cfg, self.predictor = cfg, predictor
        self.metrics = ServerMetrics()
        self.runner = make_runner(predictor, cfg, self.metrics)
        self.ready = False
        self.expected_auth = f"Bearer {cfg.token}".encode() if cfg.token else None

    def token_ok(self, given: bytes) -> bool:
        """Whether an ``Authorization`` header value passes (always, without ``--token``)."""
        return self.expected_auth is None or hmac.compare_digest(given, self.expected_auth)

    def authorize(self, request: Request) -> None:
        if not self.token_ok(request.headers.get("authorization", "").encode()):
            raise RequestError(401, "unauthorized", "missing or wrong bearer token",
                               headers={"WWW-Authenticate": "Bearer"})

    def admit(self) -> None:
        if self.cfg.server == "batched" and self.runner.depth >= self.cfg.max_queue:
            raise QueueFull()

    def refusal(self, full: QueueFull) -> RequestError:
        """The 503 for a full queue, counted as a refusal (by whichever layer answers it)."""
        self.metrics.rejected.labels("queue_full").inc()
        reason = str(full) or f"queue full ({self.cfg.max_queue} requests)"
        return RequestError(503, "overloaded", f"{reason}; retry later",
                            headers={"Retry-After": str(self.cfg.retry_after_s)})

    def count(self, endpoint: str, status: int, start_s: float) -> None:
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start_s)

    async def handle(self, task: str, request: Request, captions: list[str]) -> Response:
        start_s = time.perf_counter()
        endpoint = request.url.path
        try:
            self.authorize(request)
            if not request.scope.get(ADMITTED):  # the admission gate, when present, has checked already
                self.admit()  # before reading the body: overload is refused at the cheapest point
            body = await read_body(request, self.cfg.max_body_bytes)
            item = decode_request(task, body, request.headers.get("content-type", ""), captions, self.cfg)
            future = self.runner.submit(item)
            output = await asyncio.wrap_future(future)
            response = json_response(encode_response(task, output))
        except QueueFull as full:
            err = self.refusal(full)
            response = json_response(err.as_dict(), err.status, err.headers)
        except RequestError as err:
            self.metrics.rejected.labels(err.limit or err.code).inc()
            response = json_response(err.as_dict(), err.status, err.headers)
        except Exception:  # a bug or device failure: one 500, the server keeps serving
            log.exception("request to %s failed", endpoint)
            response = json_response({"error": {"code": "internal", "message": "internal error"}}, 500)
        self.count(endpoint, response.status_code, start_s)
        return response

    async def start(self) -> None:
        self.runner.start()
        await asyncio.get_running_loop().run_in_executor(None, warm_up, self.predictor, self.cfg)
        settle_process(self.cfg)
        self.ready = True

    async def stop(self) -> None:
        self.ready = False  # draining: uvicorn has stopped accepting and waited for in-flight requests
        await asyncio.get_running_loop().run_in_executor(None, self.runner.stop, self.cfg.drain_timeout_s)

    async def readiness(self) -> tuple[bool, int]:
        """(ready, requests admitted and not yet answered)."""
        return self.ready, self.runner.depth

    async def render_metrics(self) -> bytes:
        self.metrics.queue_depth.set(self.runner.depth)
        return self.metrics.render()


def warm_up(predictor, cfg: ServeConfig) -> None:
    """One forward per task before /readyz turns 200, so the first client pays no init cost."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buf, format="JPEG")
    image = buf.getvalue()
    for task in ("match", "embed_image"):
        predictor.predict(task, [Item(task, image, ["a warm-up caption"])])
    predictor.predict("embed_text", [Item("embed_text", captions=["warm-up"])])
    warm = getattr(predictor, "warm_buckets", None)
    if warm:
        shapes = warm(cfg.max_batch, cfg.max_captions)
        log.info("warmed %d batch shapes", shapes)


def settle_process(cfg: ServeConfig) -> None:
    """After start-up, before serving: move the ~10^6 objects of torch/timm/transformers start-up
    out of the GC's reach (a full collection over them would pause every thread, in-flight requests
    included), and apply ``gil_switch_ms``."""
    gc.collect()
    gc.freeze()
    if cfg.gil_switch_ms > 0:
        sys.setswitchinterval(cfg.gil_switch_ms / 1000.0)


def create_app(predictor, cfg: ServeConfig, server: Server | None = None, admission_gate: bool = True) -> FastAPI:
    """The FastAPI app serving ``predictor`` with the runner named by ``cfg.server`` (or, in a
    front-end process, around ``server``, which forwards to the model process).
    ``admission_gate=False`` leaves overload refusals to the route handlers (the slower path,
    kept for ``benchmarks/refusal_cost.py``)."""
    server = server or Server(predictor, cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await server.start()
        yield
        await server.stop()

    app = FastAPI(title="mmscale inference server", version="1", lifespan=lifespan,
                  description="Image-text matching (ITM), similarity (ITC) and embeddings of an "
                              "image+text model with cross-attention fusion. See docs/serving.md.")
    app.state.server = server
    if admission_gate:
        app.add_middleware(AdmissionGate, server=server)
    caption_query = Query(default=[], description="caption (repeat for several) when the body is the image file")

    @app.post("/v1/match", openapi_extra=schemas.IMAGE_BODY,
              responses={200: {"model": schemas.MatchResponse}, **schemas.ERRORS})
    async def match(request: Request, caption: list[str] = caption_query) -> Response:
        """One image and 1..max_captions captions -> ITM probability and ITC similarity per caption."""
        return await server.handle("match", request, caption)

    @app.post("/v1/embed/image", openapi_extra=schemas.IMAGE_BODY,
              responses={200: {"model": schemas.ImageEmbedResponse}, **schemas.ERRORS})
    async def embed_image(request: Request) -> Response:
        """One image -> its normalized ITC embedding."""
        return await server.handle("embed_image", request, [])

    @app.post("/v1/embed/text", openapi_extra=schemas.TEXT_BODY,
              responses={200: {"model": schemas.TextEmbedResponse}, **schemas.ERRORS})
    async def embed_text(request: Request) -> Response:
        """1..max_captions texts -> their normalized ITC embeddings."""
        return await server.handle("embed_text", request, [])

    @app.get("/healthz")
    async def healthz() -> Response:
        """200 while the process is up (``pid``: which process answered, with ``--frontends N``)."""
        return json_response({"status": "ok", "pid": os.getpid()})

    @app.get("/readyz")
    async def readyz() -> Response:
        """200 once the model is loaded and warmed up; 503 before that and while draining."""
        ready, depth = await server.readiness()
        if ready:
            return json_response({"status": "ready", "server": cfg.server, "queue_depth": depth})
        return json_response({"status": "not ready"}, 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus text format: requests by status, queue depth, batch sizes, latency."""
        try:
            server.authorize(request)
        except RequestError as err:
            return json_response(err.as_dict(), err.status, err.headers)
        return Response(await server.render_metrics(), media_type="text/plain; version=0.0.4")

    return app
