"""The framed protocol between HTTP front-end processes and the model process (``--frontends N``).

One unix socket per front end, private to the server (its directory is mode 0700, so only the
server's user can connect: payloads are pickles, which must never come from an untrusted peer).
A frame is a 4-byte little-endian length and a pickled tuple; the first element names the message:

    front end -> model   ("req", rid, task, image_bytes, captions, token_ids)
                         ("ready", rid)  ("metrics", rid)
    model -> front end   ("hello", max_text_len)                 once, on connect
                         ("ok", rid, itm_prob, itc_similarity, embeddings)
                         ("err", rid, status, code, message, limit)   a 4xx for this item
                         ("full", rid, reason)                   queue full: answer 503 at once
                         ("fail", rid, message)                  a bug or device failure: 500
                         ("ready", rid, is_ready, queue_depth)  ("metrics", rid, prometheus_text)

Plain tuples, not the ``Output``/``RequestError`` objects: exceptions with their own ``__init__``
do not survive a pickle round trip. Measured on 2 CPU cores, client and model host in one process
(so sharing one GIL), a no-op model and a 20 kB image per request: 0.2 ms per round trip with one
request in flight, ~12,000 round trips/s with 64 or 256 in flight, through one connection.
"""

from __future__ import annotations

import pickle
import struct

from mmscale.serve.items import Item, Output, RequestError

HEADER = struct.Struct("<I")
MAX_FRAME_BYTES = 1 << 30  # a corrupt length must not allocate without bound


class WireError(Exception):
    """The peer sent something that is not a frame of this protocol (or hung up mid-frame)."""


def frame(message: tuple) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def payload_size(header: bytes) -> int:
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise WireError(f"frame of {size} bytes is larger than {MAX_FRAME_BYTES}")
    return size


def unframe(payload: bytes) -> tuple:
    message = pickle.loads(payload)
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        raise WireError(f"not a protocol message: {type(message).__name__}")
    return message


def read_frame(stream) -> tuple | None:
    """One message from a blocking binary stream (``socket.makefile('rb')``); None at a clean EOF."""
    header = stream.read(HEADER.size)
    if not header:
        return None
    if len(header) < HEADER.size:
        raise WireError("connection closed inside a frame header")
    size = payload_size(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise WireError("connection closed inside a frame")
    return unframe(payload)


def request_message(rid: int, item: Item) -> tuple:
    return ("req", rid, item.task, item.image_bytes, item.captions, item.token_ids)


def item_from_message(message: tuple) -> tuple[int, Item]:
    _, rid, task, image_bytes, captions, token_ids = message
    return rid, Item(task, image_bytes, list(captions), token_ids)


def reply_message(rid: int, result: "Output | BaseException") -> tuple:
    """The answer to one request: its output, its 4xx, or a 500 for anything else."""
    if isinstance(result, Output):
        return ("ok", rid, result.itm_prob, result.itc_similarity, result.embeddings)
    if isinstance(result, RequestError):
        return ("err", rid, result.status, result.code, result.message, result.limit)
    return ("fail", rid, f"{type(result).__name__}: {result}"[:500])


def result_from_reply(message: tuple) -> Output | RequestError:
    """An ``ok``/``err`` reply as the object the single-process server would have had."""
    if message[0] == "ok":
        _, _, itm_prob, itc_similarity, embeddings = message
        return Output(itm_prob=itm_prob, itc_similarity=itc_similarity, embeddings=embeddings)
    if message[0] == "err":
        _, _, status, code, text, limit = message
        return RequestError(status, code, text, limit=limit)
    raise WireError(f"not a result reply: {message[0]!r}")
