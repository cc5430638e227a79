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
import io
import logging
import os
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from mmscale.serve import schemas
from mmscale.serve.batcher import RUNNERS, QueueFull
from mmscale.serve.codec import decode_request, encode_response
from mmscale.serve.config import BODY_TIMEOUT_S, DRAIN_TIMEOUT_S, RETRY_AFTER_S, TRIM_BATCHES_ABOVE, ServeConfig
from mmscale.serve.defaults import resolve
from mmscale.serve.gate import AdmissionGate
from mmscale.serve.items import Item, RequestError
from mmscale.serve.metrics import ServerMetrics
from mmscale.strict_json import dumps

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection before the answer
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}
SENT = "mmscale.sent"  # the ASGI scope key the handler sets once a request went to the runner


def json_response(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    body = dumps(payload, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def read_body(request: Request, limit_bytes: int, timeout_s: float | None = None) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit_bytes``, and (408) when it
    has not fully arrived within ``timeout_s`` (``BODY_TIMEOUT_S``): a stalled upload must not hold
    its connection."""
    timeout_s = BODY_TIMEOUT_S if timeout_s is None else timeout_s
    too_big = RequestError(413, "limit_exceeded", f"body is larger than max_body_bytes={limit_bytes}",
                           limit="max_body_bytes")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit_bytes:
        raise too_big

    async def read() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(408, "request_timeout", f"the request body did not arrive within {timeout_s:g} s",
                           headers={"Connection": "close"}) from None


def make_runner(predictor, cfg: ServeConfig, metrics: ServerMetrics, on_depth=None):
    """The runner ``cfg.server`` names, around ``predictor.predict``. ``on_depth``: told every new
    queue depth."""
    if cfg.server == "batched":
        fit = None
        if hasattr(predictor, "batch_size_for"):
            fit = functools.partial(predictor.batch_size_for, above=TRIM_BATCHES_ABOVE)
        return RUNNERS["batched"](predictor.predict, cfg.max_batch, cfg.max_wait_ms, cfg.max_queue,
                                  on_batch=metrics.on_batch, slo_ms=cfg.slo_ms, on_depth=on_depth, fit=fit)
    return RUNNERS["naive"](predictor.predict, on_batch=metrics.on_batch)


class Server:
    """One server instance: config, predictor, runner, metrics, readiness.

    The hooks ``start``/``stop``/``readiness``/``render_metrics`` are what a front-end process
    (``frontend.FrontendServer``) replaces to talk to the model process instead.
    """

    def __init__(self, predictor, cfg: ServeConfig):
        cfg = resolve(cfg)
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
        """Refuse (``QueueFull``) a request the batcher could not serve within the SLO."""
        if self.cfg.server == "batched":
            self.runner.admit()

    def release(self, scope: dict) -> None:
        """Called by the gate when a request it admitted is done (``FrontendServer`` counts them)."""

    def refusal(self, full: QueueFull) -> RequestError:
        """The 503 for a full queue, counted as a refusal (by whichever layer answers it)."""
        self.metrics.rejected.labels("queue_full").inc()
        reason = str(full) or f"queue full ({self.cfg.max_queue} requests)"
        return RequestError(503, "overloaded", f"{reason}; retry later",
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    def count(self, endpoint: str, status: int | str, start_s: float) -> None:
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start_s)

    async def handle(self, task: str, request: Request, captions: list[str]) -> Response:
        start_s = time.perf_counter()
        endpoint = request.url.path
        try:
            self.authorize(request)  # admission was decided by the gate, before routing
            body = await read_body(request, self.cfg.max_body_bytes)
            item = decode_request(task, body, request.headers.get("content-type", ""), captions, self.cfg)
            future = self.runner.submit(item)
            request.scope[SENT] = True  # handed to the model: no longer the front end's (``release``)
            output = await asyncio.wrap_future(future)
            response = json_response(encode_response(task, output))
        except QueueFull as full:
            err = self.refusal(full)
            response = json_response(err.as_dict(), err.status, err.headers)
        except ClientDisconnect:  # the client went away mid-upload: nobody to answer, not a server error
            log.info("client disconnected before its request to %s was read", endpoint)
            self.count(endpoint, CLIENT_CLOSED, start_s)
            return Response(status_code=CLIENT_CLOSED)
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
        settle_process()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False  # draining: uvicorn has stopped accepting and waited for in-flight requests
        await asyncio.get_running_loop().run_in_executor(None, self.runner.stop, DRAIN_TIMEOUT_S)

    async def readiness(self) -> tuple[bool, int]:
        """(ready, requests admitted and not yet answered)."""
        return self.ready, self.runner.depth

    async def render_metrics(self) -> bytes:
        self.metrics.queue_depth.set(self.runner.depth)
        return self.metrics.render()


def warm_up(predictor, cfg: ServeConfig) -> None:
    """One forward per task before /readyz turns 200, so the first client pays no init cost."""
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


def settle_process() -> None:
    """After start-up, before serving: move the ~10^6 objects of torch/timm/transformers start-up
    out of the GC's reach (a full collection over them would pause every thread, in-flight requests
    included)."""
    gc.collect()
    gc.freeze()


def create_app(predictor, cfg: ServeConfig, server: Server | None = None) -> FastAPI:
    """The FastAPI app serving ``predictor`` with the runner named by ``cfg.server`` (or, in a
    front-end process, around ``server``, which forwards to the model process)."""
    server = server or Server(predictor, cfg)
    cfg = server.cfg

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await server.start()
        yield
        await server.stop()

    app = FastAPI(title="mmscale inference server", version="1", lifespan=lifespan,
                  description="Image-text matching (ITM), similarity (ITC) and embeddings of an "
                              "image+text model with cross-attention fusion. See docs/serving.md.")
    app.state.server = server
    app.add_middleware(AdmissionGate, server=server)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        """Routing errors (404, 405) in the documented error shape instead of FastAPI's ``{"detail"}``."""
        code = HTTP_ERROR_CODES.get(exc.status_code, "bad_request")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return json_response({"error": {"code": code, "message": message}}, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return json_response({"error": {"code": "bad_request", "message": str(exc.errors()[:1])}}, 400)

    max_captions = cfg.max_captions

    @app.post("/v1/match", openapi_extra=schemas.image_body(max_captions, captions_required=True),
              responses={200: {"model": schemas.MatchResponse}, **schemas.ERRORS})
    async def match(request: Request) -> Response:
        """One image and 1..max_captions captions -> ITM probability and ITC similarity per caption."""
        return await server.handle("match", request, request.query_params.getlist("caption"))

    @app.post("/v1/embed/image", openapi_extra=schemas.image_body(max_captions, captions_required=False),
              responses={200: {"model": schemas.ImageEmbedResponse}, **schemas.ERRORS})
    async def embed_image(request: Request) -> Response:
        """One image -> its normalized ITC embedding."""
        return await server.handle("embed_image", request, [])

    @app.post("/v1/embed/text", openapi_extra=schemas.text_body(max_captions),
              responses={200: {"model": schemas.TextEmbedResponse}, **schemas.ERRORS})
    async def embed_text(request: Request) -> Response:
        """1..max_captions texts -> their normalized ITC embeddings."""
        return await server.handle("embed_text", request, [])

    @app.get("/healthz", responses={200: {"model": schemas.Health}})
    async def healthz() -> Response:
        """200 while the process is up (``pid``: which process answered, with ``--frontends N``)."""
        return json_response({"status": "ok", "pid": os.getpid()})

    @app.get("/readyz", responses={200: {"model": schemas.Readiness}, 503: {"model": schemas.Readiness}})
    async def readyz() -> Response:
        """200 once the model is loaded and warmed up; 503 before that and while draining."""
        ready, depth = await server.readiness()
        if ready:
            return json_response({"status": "ready", "server": cfg.server, "queue_depth": depth})
        return json_response({"status": "not ready"}, 503)

    @app.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
                        401: {"content": {"application/json": {"schema": schemas.ERROR_REF}}}})
    async def metrics(request: Request) -> Response:
        """Prometheus text format: requests by status, queue depth, batch sizes, latency."""
        try:
            server.authorize(request)
        except RequestError as err:
            return json_response(err.as_dict(), err.status, err.headers)
        return Response(await server.render_metrics(), media_type="text/plain; version=0.0.4")

    return app
