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
from mmscale.serve.app import SENT, Server, create_app, settle_process
from mmscale.serve.batcher import QueueFull
from mmscale.serve.config import FRONTEND_CONFIG_ENV, ServeConfig
from mmscale.serve.depth_board import DepthBoard
from mmscale.serve.items import Item, RequestError
from mmscale.serve.listen import bind_socket, uvicorn_config
from mmscale.serve.metrics import ServerMetrics, frontends_text
from mmscale.serve.wire import HEADER, WireError, frame, payload_size, request_message, result_from_reply, unframe

log = logging.getLogger(__name__)

STREAM_LIMIT_BYTES = 1 << 20


class ModelUnavailable(RequestError):
    def __init__(self, why: str):
        super().__init__(503, "unavailable", f"model process unavailable ({why})",
                         headers={"Retry-After": "1"})


class RemoteRunner:
    """Stands in for the batcher: ``submit(item)`` returns an asyncio future of the model's reply.

    It also bounds what this front end has in flight at ``max_queue`` requests, a memory backstop:
    the shared page (``depth_board``) counts what this front end sent, so the gate's wait already
    holds requests still in the socket.
    """

    def __init__(self, ipc_path: str, tokenizer=None, on_lost=None, max_inflight: int = 0):
        self.ipc_path, self.tokenizer, self.on_lost = ipc_path, tokenizer, on_lost
        self.max_inflight = max_inflight  # 0: unbounded
        self.pending: dict[int, asyncio.Future] = {}
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
        self.writer.write(frame(make_message(rid)))
        return future

    def tokenize(self, item: Item) -> Item:
        """The captions as token-id rows for the model process ([CLS] ... [SEP], unpadded)."""
        if self.tokenizer is None or not item.captions:
            return item
        try:
            ids, mask = self.tokenizer.encode_arrays(item.captions, max_len=self.max_text_len, pad_to_longest=True)
        except Exception as exc:  # the tokenizer refused this request's text: its own 400, nobody else's
            log.warning("a request's captions cannot be tokenized (%s: %s)", type(exc).__name__, exc)
            raise RequestError(400, "bad_request", "a caption cannot be tokenized") from None
        lengths = mask.sum(1).tolist()
        item.token_ids = [row[:n] for row, n in zip(ids.tolist(), lengths)]
        return item

    def admit(self) -> None:
        """Refuse (``QueueFull``) when this front end already has ``max_queue`` requests in flight."""
        if self.max_inflight and self.depth >= self.max_inflight:
            raise QueueFull(f"queue full ({self.depth} requests in flight from this front end, "
                            f"max_queue={self.max_inflight})")

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

    def __init__(self, cfg: ServeConfig, runner: RemoteRunner, multiproc_dir: str, board: DepthBoard | None = None,
                 slot: int = 0):
        self.cfg, self.predictor, self.runner, self.board = cfg, None, runner, board
        self.metrics = ServerMetrics()  # mmap-backed: PROMETHEUS_MULTIPROC_DIR is set for this process
        self.multiproc_dir = multiproc_dir
        self.ready = False
        self.expected_auth = f"Bearer {cfg.token}".encode() if cfg.token else None
        self.slot, self.handed = slot, 0  # this front end's slot on the page; requests it admitted, less dropped

    def admit(self) -> None:
        """Refuse by the model process's queue as last published, plus what every front end admitted
        that the model process has not read yet: the count bound, and with ``slo_ms`` the time one
        more request would be answered. The model process still applies both for the few that race
        past. Then this front end's own in-flight bound; an admitted request is counted on the page
        until it is sent or dropped (``release``)."""
        if self.board is not None:
            in_transit = self.board.in_transit(self.cfg.frontends or 1)
            backlog = self.board.backlog()
            depth = backlog.depth + in_transit
            if depth >= self.cfg.max_queue:
                raise QueueFull(f"queue full ({self.cfg.max_queue} requests)")
            wait_s = backlog.wait_s(time.monotonic(), in_transit)
            if self.cfg.slo_ms and depth and 1000 * wait_s > self.cfg.slo_ms:  # idle: take any request
                raise QueueFull(f"{depth} requests ahead would take {1000 * wait_s:.0f} ms, "
                                f"more than slo_ms={self.cfg.slo_ms:g}")
        self.runner.admit()
        self.hand(+1)

    def release(self, scope: dict) -> None:
        """An admitted request is done here: one never sent to the model process (a bad request, a
        lost link) leaves the in-transit count."""
        if not scope.get(SENT):
            self.hand(-1)

    def hand(self, change: int) -> None:
        self.handed += change
        if self.board is not None:
            self.board.hand(self.slot, self.handed)

    async def start(self) -> None:
        # Start-up objects leave the GC's reach before connecting: the model process counts a front
        # end ready once it connects, and connections hashed to this front end wait until it serves.
        settle_process()
        await self.runner.connect()
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
    parser.add_argument("--name", default="0", help="this front end's index (its slot on the depth board)")
    parser.add_argument("--depth-board", help="the model process's shared queue-depth page (depth_board)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"frontend {args.name}: %(levelname)s %(message)s")

    cfg = ServeConfig(**json.loads(os.environ[FRONTEND_CONFIG_ENV]))
    runner = RemoteRunner(args.ipc, load_tokenizer(), max_inflight=cfg.max_queue)
    board = DepthBoard(args.depth_board) if args.depth_board else None
    front = FrontendServer(cfg, runner, os.environ["PROMETHEUS_MULTIPROC_DIR"], board, slot=int(args.name))
    app = create_app(None, cfg, server=front)
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
