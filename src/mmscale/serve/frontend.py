"""An HTTP front-end process of ``--frontends N``: HTTP, auth, limits, header checks, tokenization
and JSON here; the model in the model process, reached over a unix socket (``wire``).

The front end runs the same FastAPI app as the single-process server (``app.create_app``) around a
``FrontendServer``, whose runner (``RemoteRunner``) forwards each admitted item and awaits its reply
on the event loop: no thread hop per request. Started by the supervisor as
``python -m mmscale.serve.frontend --port PORT --ipc PATH`` (the config in
``$MMSCALE_FRONTEND_CONFIG``), binding PORT with SO_REUSEPORT beside its siblings; exits 0 after a
drained SIGTERM, 1 when the model process goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import sys
import time

import uvicorn

from mmscale.data.tokenizer import load_tokenizer
from mmscale.serve.app import Server, create_app, settle_process
from mmscale.serve.batcher import QueueFull
from mmscale.serve.config import ServeConfig
from mmscale.serve.depth_board import DepthBoard
from mmscale.serve.items import Item, RequestError
from mmscale.serve.metrics import ServerMetrics, frontends_text
from mmscale.serve.run import bind_socket, uvicorn_config
from mmscale.serve.supervisor import CONFIG_ENV
from mmscale.serve.wire import HEADER, WireError, frame, payload_size, request_message, result_from_reply, unframe

log = logging.getLogger(__name__)

STREAM_LIMIT_BYTES = 1 << 20


class ModelUnavailable(RequestError):
    def __init__(self, why: str):
        super().__init__(503, "unavailable", f"model process unavailable ({why})",
                         headers={"Retry-After": "1"})


class RemoteRunner:
    """Stands in for the batcher: ``submit(item)`` returns an asyncio future of the model's reply.

    It also bounds what this front end has in flight, because the model process can only refuse a
    request once it has read it, and the page it publishes (``depth_board``) does not see requests
    still in the socket or in this process's write buffer (measured on H100 with no front-end
    bound: refusals 16 s late). The bounds are ``max_queue`` requests in flight from this front end
    and, with ``slo_ms``, the age of its oldest request in flight: one that has waited longer than
    the SLO says the path to the model is congested, whatever the page says.
    """

    def __init__(self, ipc_path: str, tokenizer=None, on_lost=None, max_inflight: int = 0,
                 max_wait_ms: float = 0.0):
        self.ipc_path, self.tokenizer, self.on_lost = ipc_path, tokenizer, on_lost
        self.max_inflight, self.max_wait_s = max_inflight, max_wait_ms / 1000.0  # 0: unbounded
        self.pending: dict[int, asyncio.Future] = {}  # in send order: the first is the oldest
        self.sent_s: dict[int, float] = {}  # when each pending request was sent (monotonic)
        self.rids = itertools.count()
        self.writer: asyncio.StreamWriter | None = None
        self.max_text_len = 0
        self.lost: str | None = None  # why the link to the model process is gone
        self.closing = False  # we are closing it (drain), so losing it is expected
        self.failed = False  # it went away while we were serving

    @property
    def depth(self) -> int:
        """This front end's requests awaiting the model (a local bound never above the global one)."""
        return len(self.pending)

    async def connect(self) -> None:
        reader, self.writer = await asyncio.open_unix_connection(self.ipc_path, limit=STREAM_LIMIT_BYTES)
        hello = await self.read_message(reader)
        if hello[0] != "hello":
            raise WireError(f"expected hello, got {hello[0]!r}")
        self.max_text_len = hello[1]
        self.reader_task = asyncio.create_task(self.read_loop(reader))

    @staticmethod
    async def read_message(reader: asyncio.StreamReader) -> tuple:
        size = payload_size(await reader.readexactly(HEADER.size))
        return unframe(await reader.readexactly(size))

    async def read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await self.read_message(reader)
                future = self.pending.pop(message[1], None)
                self.sent_s.pop(message[1], None)
                if future is not None and not future.done():
                    settle(future, message)
        except asyncio.IncompleteReadError:
            why = "connection closed"
        except Exception as exc:  # a broken socket or a frame that is not ours: the link is unusable
            why = f"{type(exc).__name__}: {exc}"
        self.lost = why
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ModelUnavailable(why))
        self.pending.clear()
        self.sent_s.clear()
        if not self.closing:
            self.failed = True
            log.error("front end lost the model process (%s); exiting", why)
            if self.on_lost:
                self.on_lost()

    def call(self, make_message) -> asyncio.Future:
        if self.lost or self.writer is None:
            raise ModelUnavailable(self.lost or "not connected")
        rid = next(self.rids)
        future = asyncio.get_running_loop().create_future()
        self.pending[rid] = future
        self.sent_s[rid] = time.monotonic()
        self.writer.write(frame(make_message(rid)))
        return future

    def tokenize(self, item: Item) -> Item:
        """The captions as token-id rows for the model process ([CLS] ... [SEP], unpadded)."""
        if self.tokenizer is None or not item.captions:
            return item
        try:
            ids, mask = self.tokenizer.encode_batch(item.captions, max_len=self.max_text_len, pad_to_longest=True)
        except Exception as exc:  # the tokenizer refused this request's text: its own 400, nobody else's
            log.warning("a request's captions cannot be tokenized (%s: %s)", type(exc).__name__, exc)
            raise RequestError(400, "bad_request", "a caption cannot be tokenized") from None
        lengths = mask.sum(1).tolist()
        item.token_ids = [row[:n] for row, n in zip(ids.tolist(), lengths)]
        return item

    def admit(self) -> None:
        """Refuse (``QueueFull``) when this front end already has ``max_queue`` requests in flight,
        or when its oldest one has waited longer than ``max_wait_ms``."""
        if self.max_inflight and self.depth >= self.max_inflight:
            raise QueueFull(f"queue full ({self.depth} requests in flight from this front end, "
                            f"max_queue={self.max_inflight})")
        if self.max_wait_s and self.sent_s:
            waited_s = time.monotonic() - next(iter(self.sent_s.values()))
            if waited_s > self.max_wait_s:
                raise QueueFull(f"the oldest of {self.depth} requests in flight from this front end has waited "
                                f"{1000 * waited_s:.0f} ms, more than slo_ms={1000 * self.max_wait_s:g}")

    def submit(self, item: Item) -> asyncio.Future:
        item = self.tokenize(item)
        return self.call(lambda rid: request_message(rid, item))

    def start(self) -> None:
        """Nothing to start here (``connect`` does it); kept for the runner interface."""

    async def close(self) -> None:
        self.closing = True
        if self.writer is not None:
            self.writer.close()


def settle(future: asyncio.Future, message: tuple) -> None:
    """Resolve one pending call from its reply."""
    kind = message[0]
    if kind == "ok":
        future.set_result(result_from_reply(message))
    elif kind == "err":
        future.set_exception(result_from_reply(message))
    elif kind == "full":
        future.set_exception(QueueFull(*message[2:3]))  # the model process's reason, when it gave one
    elif kind == "fail":
        future.set_exception(RuntimeError(f"model process: {message[2]}"))
    elif kind == "ready":
        future.set_result((message[2], message[3]))
    elif kind == "metrics":
        future.set_result(message[2])
    else:
        future.set_exception(WireError(f"unknown reply {kind!r}"))


class FrontendServer(Server):
    """``app.Server`` whose runner, readiness and batch metrics live in the model process."""

    def __init__(self, cfg: ServeConfig, runner: RemoteRunner, multiproc_dir: str, board: DepthBoard | None = None):
        self.cfg, self.predictor, self.runner, self.board = cfg, None, runner, board
        self.metrics = ServerMetrics()  # mmap-backed: PROMETHEUS_MULTIPROC_DIR is set for this process
        self.multiproc_dir = multiproc_dir
        self.ready = False
        self.expected_auth = f"Bearer {cfg.token}".encode() if cfg.token else None

    def admit(self) -> None:
        """Refuse by the model process's queue as last published (the count bound, and with
        ``slo_ms`` the time one more request would be answered), which still applies both, for the
        few that race past; then at this front end's own in-flight bound."""
        if self.board is not None:
            depth = self.board.read()
            if depth >= self.cfg.max_queue:
                raise QueueFull(f"queue full ({self.cfg.max_queue} requests)")
            wait_s = self.board.answer_at_s() - time.monotonic()
            if self.cfg.slo_ms and depth and 1000 * wait_s > self.cfg.slo_ms:  # idle: take any request
                raise QueueFull(f"{depth} requests ahead would take {1000 * wait_s:.0f} ms, "
                                f"more than slo_ms={self.cfg.slo_ms:g}")
        self.runner.admit()

    async def start(self) -> None:
        await self.runner.connect()
        settle_process()  # torch (imported by the tokenizer) leaves ~10^6 objects for the GC
        self.ready = True

    async def stop(self) -> None:
        self.ready = False  # uvicorn has stopped accepting and answered every in-flight request
        await self.runner.close()

    async def readiness(self) -> tuple[bool, int]:
        if not self.ready or self.runner.lost:
            return False, self.runner.depth
        try:
            return await asyncio.wait_for(self.runner.call(lambda rid: ("ready", rid)), 5.0)
        except (RequestError, asyncio.TimeoutError):
            return False, self.runner.depth

    async def render_metrics(self) -> bytes:
        try:
            model_text = await asyncio.wait_for(self.runner.call(lambda rid: ("metrics", rid)), 10.0)
        except (RequestError, asyncio.TimeoutError):  # model process gone or stuck: what we have
            model_text = b"# model process unreachable: batch and queue metrics missing\n"
        return frontends_text(self.multiproc_dir) + model_text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="one HTTP front end of mmscale serve --frontends N")
    parser.add_argument("--port", type=int, required=True, help="the server's port (bound with SO_REUSEPORT)")
    parser.add_argument("--ipc", required=True, help="the model process's unix socket")
    parser.add_argument("--name", default="0")
    parser.add_argument("--depth-board", help="the model process's shared queue-depth page (depth_board)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"frontend {args.name}: %(levelname)s %(message)s")

    cfg = ServeConfig(**json.loads(os.environ[CONFIG_ENV]))
    runner = RemoteRunner(args.ipc, load_tokenizer(), max_inflight=cfg.max_queue, max_wait_ms=cfg.slo_ms)
    board = DepthBoard(args.depth_board) if args.depth_board else None
    app = create_app(None, cfg, server=FrontendServer(cfg, runner, os.environ["PROMETHEUS_MULTIPROC_DIR"], board))
    server = uvicorn.Server(uvicorn_config(app))
    runner.on_lost = lambda: setattr(server, "should_exit", True)
    # A SIGTERM before uvicorn takes the signals over (still starting) must still end this process
    # after a clean start-up and shutdown; uvicorn also re-raises the signal after its graceful
    # shutdown, and a drained exit is status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
    sock = bind_socket(cfg.host, args.port, reuse_port=True)
    sock.listen(4096)  # in the port's group before the model process counts this front end as ready
    server.run(sockets=[sock])
    return 0 if server.started and not runner.failed else 1


if __name__ == "__main__":
    sys.exit(main())
