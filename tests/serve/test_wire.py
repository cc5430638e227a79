"""The front end <-> model process protocol alone: frames round-trip, replies carry exactly what the
single-process server would have had, broken streams are errors (never a hang or a wrong answer),
and tokens made in a front end give the model the same tensors as tokenizing in the model."""

import io

import pytest
import torch

from mmscale.serve.items import Item, Output, RequestError
from mmscale.serve.wire import (HEADER, WireError, frame, item_from_message, read_frame, reply_message,
                                request_message, result_from_reply)


def test_request_round_trips_through_a_stream():
    item = Item("match", b"\xff\xd8 image bytes", ["a cat", "a dog"], [[101, 1037, 4937, 102], [101, 102]])
    stream = io.BytesIO(frame(request_message(7, item)) + frame(("ready", 8)))
    rid, back = item_from_message(read_frame(stream))
    assert (rid, back) == (7, item)
    assert read_frame(stream) == ("ready", 8)
    assert read_frame(stream) is None  # clean end of stream


def test_replies_become_the_same_output_or_error():
    out = Output(itm_prob=[0.25], itc_similarity=[0.5])
    assert result_from_reply(reply_message(1, out)) == out
    err = result_from_reply(reply_message(2, RequestError(400, "bad_image", "cannot decode", limit=None)))
    assert isinstance(err, RequestError) and (err.status, err.code, err.message) == (400, "bad_image", "cannot decode")
    fail = reply_message(3, RuntimeError("device fell over"))
    assert fail[0] == "fail" and "device fell over" in fail[2]
    with pytest.raises(WireError):
        result_from_reply(fail)


@pytest.mark.parametrize("data", [
    frame(("ready", 1))[:2],  # inside the header
    frame(("ready", 1))[:-1],  # inside the payload
    HEADER.pack(2**31) + b"x",  # a length no frame of ours has
])
def test_broken_streams_are_wire_errors(data):
    with pytest.raises(WireError):
        read_frame(io.BytesIO(data))


def test_front_end_tokens_give_the_same_tensors_as_tokenizing_in_the_model(tiny_predictor):
    from mmscale.serve.frontend import RemoteRunner

    runner = RemoteRunner("unused", tiny_predictor.tokenizer)
    runner.max_text_len = tiny_predictor.max_text_len
    captions = [["a red cube"], ["two green spheres near a cone " * 8, "x"], ["b", "c d"]]  # one truncated
    items = [runner.tokenize(Item("match", b"", c)) for c in captions]
    assert all(it.token_ids is not None for it in items)
    for pad in (False, True):
        tiny_predictor.pad_buckets = pad
        try:
            ids, mask = tiny_predictor.caption_tensors(items)
            ref_ids, ref_mask = tiny_predictor.tokenize([c for cs in captions for c in cs])
        finally:
            tiny_predictor.pad_buckets = False
        assert torch.equal(ids, ref_ids) and torch.equal(mask, ref_mask)
        assert ids.shape[0] == (6 if pad else 5)  # padded to the bucket of 5 rows


def test_pre_tokenized_items_score_like_plain_ones(tiny_predictor):
    from mmscale.serve.frontend import RemoteRunner
    from tests.serve.conftest import jpeg

    runner = RemoteRunner("unused", tiny_predictor.tokenizer)
    runner.max_text_len = tiny_predictor.max_text_len
    plain = [Item("match", jpeg(seed=k), [f"caption {k}", "a cat"]) for k in range(2)]
    tokenized = [runner.tokenize(Item(it.task, it.image_bytes, list(it.captions))) for it in plain]
    for a, b in zip(tiny_predictor.predict("match", plain), tiny_predictor.predict("match", tokenized)):
        assert a.itm_prob == pytest.approx(b.itm_prob, abs=1e-6)


def test_a_full_reply_carries_the_model_process_reason_to_the_front_end():
    import asyncio

    from mmscale.serve.batcher import QueueFull
    from mmscale.serve.frontend import settle

    async def settled(message):
        future = asyncio.get_running_loop().create_future()
        settle(future, message)
        return future.exception()

    with_reason = asyncio.run(settled(("full", 7, "queue full: 90 requests ahead would take 120 ms")))
    without = asyncio.run(settled(("full", 7)))
    assert isinstance(with_reason, QueueFull) and "120 ms" in str(with_reason)
    assert isinstance(without, QueueFull) and str(without) == ""
