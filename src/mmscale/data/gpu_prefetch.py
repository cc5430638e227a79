"""Runs the GPU decoder ahead of the training step: ``GpuDecodeLoader``.

torchvision's nvjpeg batch decode (measured; TorchCodec's, used where it is installed, is not
measured yet) ends in a ``cudaStreamSynchronize`` on its own stream: the
calling thread blocks until the hardware decoder is done, about 15 ms per 256 JPEGs of 640x480 on
one H100, and taking a raw batch from the DataLoader up to about 10 ms more. Called between
training steps (``threads=0``), both are time the training process launches nothing.
``threads=1`` reads and decodes in one background thread; ``threads=2`` (the default) reads in one
and decodes in another, so the next batch is read while this one decodes. torch operators release
the GIL while they run, so the training step launches its kernels while nvjpeg works.

Each batch is decoded on a side CUDA stream and handed over with an event: the
consumer's stream waits for that event on the GPU, never the host for the whole device. Batches
come out in the order the DataLoader gave them; an error in the decode thread is raised in the
consumer; a consumer that stops early stops the thread before the generator returns, so the
DataLoader is never read by two threads at once.
"""

from __future__ import annotations

import collections
import queue
import threading

import torch

from mmscale.data.gpu_decode import GpuDecoder
from mmscale.data.gpu_raw import RawBatch

_END = object()  # the source is exhausted
_STOPPED = object()  # the consumer left; stages wind down
_POLL_S = 0.1  # how often a stage blocked on a queue checks for a stop


class _Failed:
    """An exception raised in a stage thread, carried downstream to the consumer."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class _Pipe:
    """A bounded queue between two stages whose ``put``/``get`` give up once ``stop`` is set."""

    def __init__(self, size: int, stop: threading.Event):
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.stop = stop

    def put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self):
        while not self.stop.is_set():
            try:
                return self.queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _STOPPED

    def drain(self):
        """The items until the end; an upstream failure is raised here."""
        while True:
            item = self.get()
            if item is _END or item is _STOPPED:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item


def _stage(items, work, out: _Pipe) -> None:
    """Thread body: ``work(item)`` for each item into ``out``, then the end or the failure."""
    try:
        for item in items:
            if not out.put(work(item)):
                return
        out.put(_END)
    except BaseException as exc:  # carried to the consumer and raised there
        out.put(_Failed(exc))


class GpuDecodeLoader:
    """Wraps an iterable of ``RawBatch`` (a DataLoader over the raw dataset) and yields ``Batch``
    with decoded images on the device, up to ``prefetch`` batches ahead.

    On CPU (tests, ``validate --preset cpu``) the same logic runs without streams.
    """

    def __init__(self, raw_batches, decoder: GpuDecoder, prefetch: int = 2, threads: int = 2):
        if threads not in (0, 1, 2):
            raise ValueError(f"threads must be 0, 1 or 2, got {threads}")
        self.raw_batches, self.decoder = raw_batches, decoder
        self.prefetch = max(prefetch, 1)
        self.threads = threads
        self.cuda = decoder.device.type == "cuda"

    def __len__(self) -> int:
        return len(self.raw_batches)

    def _side_stream(self):
        return torch.cuda.Stream(device=self.decoder.device) if self.cuda else None

    def _launch(self, raw: RawBatch, stream):
        if stream is None:
            return self.decoder(raw), None
        with torch.cuda.stream(stream):
            batch = self.decoder(raw)
            done = torch.cuda.Event()
            done.record(stream)
        return batch, done

    def _handover(self, batch, done):
        """Make the consumer's stream wait for the side stream's work on ``batch``."""
        if done is not None:
            current = torch.cuda.current_stream(self.decoder.device)
            current.wait_event(done)  # GPU-side wait: the host does not block here
            for t in (batch.images, batch.input_ids, batch.attention_mask):
                t.record_stream(current)  # memory from the side stream now used on this one
        return batch

    def __iter__(self):
        return self._threaded() if self.threads else self._inline()

    def _inline(self):
        stream = self._side_stream()
        pending: collections.deque = collections.deque()
        source = iter(self.raw_batches)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.prefetch:
                try:
                    raw = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(self._launch(raw, stream))
            if not pending:
                return
            yield self._handover(*pending.popleft())

    def _threaded(self):
        # The DataLoader's iterator is made here, in the consumer's thread: making it draws worker
        # seeds from the global torch RNG, which training forks around the first batch so that a
        # resumed run draws the same numbers as an uninterrupted one.
        source = iter(self.raw_batches)
        stop = threading.Event()
        stream = self._side_stream()
        ready = _Pipe(self.prefetch, stop)
        if self.threads == 1:
            bodies = [(source, lambda raw: self._launch(raw, stream), ready)]
        else:
            raw = _Pipe(self.prefetch, stop)
            bodies = [(source, lambda item: item, raw), (raw.drain(), lambda raw: self._launch(raw, stream), ready)]
        workers = [threading.Thread(target=_stage, args=body, name="mmscale-gpu-decode", daemon=True)
                   for body in bodies]
        for worker in workers:
            worker.start()
        try:
            for item in ready.drain():
                yield self._handover(*item)
        finally:
            stop.set()
            for worker in workers:
                worker.join()  # each finishes the item in hand, sees the stop and returns
