"""The model process's side of ``--frontends N``: one batcher fed by every front end over unix sockets.

Each front end holds one connection. Per connection a reader thread unpickles requests and submits
them to the runner (``DynamicBatcher``, exactly as the single-process server uses it), and a writer
thread sends the replies, several per ``sendall`` when they come together (a batch of 256 answers
is one write, and the pickling stays off the inference thread). Admission is decided here, so the
bound on queued requests is one global ``max_queue`` whatever the number of front ends; the depth
is also published on a shared page (``depth_board``), with the count of requests read, so that
front ends refuse at that bound before reading a request's body.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading

from mmscale.serve.app import make_runner
from mmscale.serve.batcher import QueueFull
from mmscale.serve.config import MAX_TEXT_LEN, ServeConfig
from mmscale.serve.defaults import resolve
from mmscale.serve.depth_board import DepthBoard
from mmscale.serve.items import RequestError
from mmscale.serve.metrics import MODEL_FAMILIES, ServerMetrics, render_families
from mmscale.serve.wire import WireError, frame, item_from_message, read_frame, reply_message

log = logging.getLogger(__name__)

MAX_REPLIES_PER_WRITE = 1024
NOT_READY = RequestError(503, "unavailable", "the model is still warming up; retry once /readyz answers 200")


class FrontendConnection:
    """One front end's socket: a reader thread (requests in) and a writer thread (replies out)."""

    def __init__(self, host: "ModelHost", conn: socket.socket, name: str):
        self.host, self.conn, self.name = host, conn, name
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()  # tuples, callables making tuples, None = end
        self.reader = threading.Thread(target=self.read_loop, name=f"mmscale-ipc-read-{name}", daemon=True)
        self.writer = threading.Thread(target=self.write_loop, name=f"mmscale-ipc-write-{name}", daemon=True)

    def start(self) -> None:
        self.outbox.put(("hello", self.host.max_text_len))
        self.writer.start()
        self.reader.start()

    def read_loop(self) -> None:
        stream = self.conn.makefile("rb", buffering=1 << 16)
        try:
            while (message := read_frame(stream)) is not None:
                self.handle(message)
        except (OSError, WireError, ValueError) as exc:
            if not self.host.stopping:
                log.error("front end %s: connection broken (%s)", self.name, exc)
        finally:
            self.outbox.put(None)

    def handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "req":
            rid, item = item_from_message(message)
            self.host.count_received()
            if not self.host.ready:  # no forward may run while warm-up records CUDA graphs
                self.outbox.put(reply_message(rid, NOT_READY))
                return
            try:
                future = self.host.runner.submit(item)
            except QueueFull as full:
                self.outbox.put(("full", rid, str(full)))
                return
            future.add_done_callback(lambda f, rid=rid: self.outbox.put(lambda: reply_message(rid, result_of(f))))
        elif kind == "ready":
            self.outbox.put(("ready", message[1], self.host.is_ready(), self.host.runner.depth))
        elif kind == "metrics":
            self.outbox.put(("metrics", message[1], self.host.render_metrics()))
        else:
            raise WireError(f"unknown message {kind!r}")

    def write_loop(self) -> None:
        while True:
            first = self.outbox.get()
            if first is None:
                break
            batch, done = [first], False
            while len(batch) < MAX_REPLIES_PER_WRITE:
                try:
                    more = self.outbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                    break
                batch.append(more)
            try:
                self.conn.sendall(b"".join(frame(m() if callable(m) else m) for m in batch))
            except OSError as exc:  # the front end is gone; its requests' answers have no reader
                log.error("front end %s: cannot send %d replies (%s)", self.name, len(batch), exc)
                break
            if done:
                break
        self.conn.close()


def result_of(future):
    exc = future.exception()
    return exc if exc is not None else future.result()


class ModelHost:
    """Listens on ``path`` (a unix socket) for front ends; runs the predictor behind one runner."""

    def __init__(self, predictor, cfg: ServeConfig, path: str, expected_frontends: int = 1,
                 board_path: str | None = None):
        cfg = resolve(cfg)
        self.cfg, self.predictor, self.path = cfg, predictor, path
        self.metrics = ServerMetrics()
        # the queue depth on a shared page, so that front ends refuse at the bound before reading bodies
        self.board = DepthBoard(board_path, create=True) if board_path else None
        on_depth = self.board.publish if self.board else None
        self.runner = make_runner(predictor, cfg, self.metrics, on_depth=on_depth)
        self.max_text_len = getattr(predictor, "max_text_len", MAX_TEXT_LEN)
        self.received, self.received_lock = 0, threading.Lock()  # requests read from every front end
        self.ready = False  # warmed up
        self.expected_frontends = expected_frontends
        self.stopping = False
        self.connections: list[FrontendConnection] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(256)
        self.acceptor = threading.Thread(target=self.accept_loop, name="mmscale-ipc-accept", daemon=True)

    def start(self) -> "ModelHost":
        self.runner.start()
        self.acceptor.start()
        return self

    def accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # listener closed: stopping
                return
            connection = FrontendConnection(self, conn, str(len(self.connections)))
            self.connections.append(connection)
            connection.start()

    def count_received(self) -> None:
        """One more request read from a front end: it is no longer in transit (``depth_board``)."""
        with self.received_lock:
            self.received += 1
            if self.board is not None:
                self.board.count_received(self.received)

    def is_ready(self) -> bool:
        """Warmed up, and every front end connected (each listens before it connects), so a client
        that waits for /readyz gets its connections spread over all of them."""
        return self.ready and not self.stopping and len(self.connections) >= self.expected_frontends

    def render_metrics(self) -> bytes:
        self.metrics.queue_depth.set(self.runner.depth)
        return render_families(self.metrics.registry, MODEL_FAMILIES)

    def stop(self, timeout_s: float) -> None:
        """Finish what is queued, then close every connection (front ends have exited by now)."""
        self.stopping, self.ready = True, False
        self.listener.close()
        self.runner.stop(timeout_s)
        for connection in self.connections:
            try:
                connection.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
