"""CUDA graphs for small batches (``--cuda-graphs``): the latency path at low concurrency.

A batch-1 eager forward of the ``base`` model is launch-bound (~11 ms on H100 for ~1 ms of math):
hundreds of small kernels, each a Python dispatch and a launch. A CUDA graph records them once
per input shape and replays them with one launch. The predictor already pads every batch to a
bucket (``buckets.buckets_up_to``), so a few shapes cover every batch up to ``max_graph_batch``;
bigger batches are GPU-bound and run eager.

Pieces, each testable on CPU with a fake ``capture``:
- ``graph_shapes``: which (image rows, caption rows) to capture per task;
- ``GraphedForward``: wraps one task's forward; a call whose input shapes were captured copies the
  inputs into the graph's static buffers, replays, and returns copies of the static outputs;
  any other shape runs the eager forward.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import torch

from mmscale.serve.buckets import buckets_up_to, next_bucket

log = logging.getLogger(__name__)

Capture = Callable[[Callable, tuple], tuple[Callable[[], None], object]]
"""``capture(run, static_inputs) -> (replay, static_outputs)``: ``replay()`` recomputes
``run(*static_inputs)`` into ``static_outputs`` (a tensor or tuple of tensors)."""


def graph_buckets(max_graph_batch: int) -> list[int]:
    """Buckets (from ``buckets_up_to``) no larger than ``max_graph_batch``: 1, 2, 3, 4, 6, 8, ..."""
    return [b for b in buckets_up_to(max_graph_batch) if b <= max_graph_batch]


def graph_shapes(max_graph_batch: int, max_batch: int, max_captions: int) -> dict[str, list[tuple[int, ...]]]:
    """Row counts to capture, per task: ``match`` -> (images, captions) pairs, the others -> (rows,).

    A match batch of B requests with C >= B captions (every request has one or more, at most
    ``max_captions``) pads to (bucket(B), bucket(C)), so only pairs with images <= captions <=
    bucket(images x max_captions) can occur. ``max_graph_batch=16`` gives 36 match pairs.
    """
    image_rows = [b for b in graph_buckets(max_graph_batch) if b <= next_bucket(max_batch)]
    text_rows = graph_buckets(max_graph_batch)
    return {
        "embed_image": [(b,) for b in image_rows],
        "embed_text": [(t,) for t in text_rows if t <= next_bucket(max_batch * max_captions)],
        "match": [(b, t) for b in image_rows for t in text_rows if b <= t <= next_bucket(b * max_captions)],
    }


def shape_key(inputs: tuple[torch.Tensor, ...]) -> tuple:
    return tuple((tuple(t.shape), t.dtype) for t in inputs)


def copy_outputs(outputs):
    """Copies of a graph's static outputs: the next replay overwrites them (and with a shared
    memory pool, so may another graph's replay)."""
    if isinstance(outputs, tuple):
        return tuple(o.clone() for o in outputs)
    return outputs.clone()


def cuda_capture(pool) -> Capture:
    """The real capture: warm-up on a side stream (required before capture), then record."""

    def capture(run: Callable, static_inputs: tuple):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                run(*static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            static_outputs = run(*static_inputs)
        return graph.replay, static_outputs

    return capture


class GraphedForward:
    """One task's forward ``fn(model, *inputs)`` with graphs for some input shapes, eager otherwise.

    Replays are serialized by a lock (static buffers are shared state, and the naive runner calls
    the predictor from several threads).
    """

    def __init__(self, fn: Callable, model, capture: Capture):
        self.fn, self.model, self.capture_fn = fn, model, capture
        self.graphs: dict[tuple, tuple[Callable[[], None], tuple, object]] = {}
        self.lock = threading.Lock()
        self.replays = 0  # calls served by a graph (for tests and logs)

    def capture(self, example_inputs: tuple[torch.Tensor, ...]) -> bool:
        """Record a graph for the shapes of ``example_inputs``; False (eager stays) if capture fails."""
        key = shape_key(example_inputs)
        static = tuple(t.clone() for t in example_inputs)
        try:
            replay, outputs = self.capture_fn(lambda *xs: self.fn(self.model, *xs), static)
        except Exception as exc:  # an op that cannot be captured: this shape runs eager, loudly
            log.warning("CUDA graph capture failed for %s %s; that shape runs eager: %s",
                        getattr(self.fn, "__name__", "forward"), key, exc)
            return False
        self.graphs[key] = (replay, static, outputs)
        return True

    def __call__(self, model, *inputs: torch.Tensor):
        entry = self.graphs.get(shape_key(inputs)) if model is self.model else None
        if entry is None:
            return self.fn(model, *inputs)
        replay, static, outputs = entry
        with self.lock:
            for buffer, value in zip(static, inputs):
                buffer.copy_(value, non_blocking=True)
            replay()
            self.replays += 1
            return copy_outputs(outputs)


def example_inputs(task: str, rows: tuple[int, ...], image_size: int, text_tokens: int, cls_id: int,
                   device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Valid inputs of the given row counts (a real caption row: [CLS] with a non-empty mask)."""
    def pixels(n):
        return torch.zeros(n, 3, image_size, image_size, device=device, dtype=dtype)

    def text(n):
        ids = torch.full((n, text_tokens), cls_id, dtype=torch.int64, device=device)
        return ids, torch.ones_like(ids)

    if task == "embed_image":
        return (pixels(rows[0]),)
    if task == "embed_text":
        return text(rows[0])
    images, captions = rows
    ids, mask = text(captions)
    owner = (torch.arange(captions, device=device) % images).to(torch.int64)
    return pixels(images), ids, mask, owner


def capture_all(forwards: dict[str, GraphedForward], shapes: dict[str, list[tuple[int, ...]]],
                make_inputs: Callable[[str, tuple[int, ...]], tuple]) -> int:
    """Capture every shape of every task; returns how many graphs were recorded."""
    recorded = 0
    for task, rows_list in shapes.items():
        for rows in rows_list:
            recorded += forwards[task].capture(make_inputs(task, rows))
    return recorded
