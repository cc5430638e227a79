"""GPU decode in a child process of its own: ``DecodeProcess``.

Why a process: torchvision's nvjpeg batch decode gives up the GIL while it works, but it needs the
GIL back many times per batch. Beside a thread that holds the GIL (the reading thread unpickling
raw batches, the training step launching kernels) each of those returns waits out the other
thread's switch interval: on an H200 a batch decode beside a busy Python thread ran at 0.012x its
speed alone (``benchmarks/decode_gil.py``), and the pipeline ran at about 1 / (1/read + 1/decode),
as if reading and decoding never overlapped. A child process has its own GIL, so nothing in the
training process can stall the decoder.

The child receives the pixel part of each ``RawBatch`` (JPEG bytes, CPU-decoded images, slots,
paths, skips; the tensors travel as shared memory), runs the same ``GpuDecoder.decode_pixels``, so
fallbacks and skips are exactly those of the in-process path, waits for its stream, and sends the
uint8 pixels back through CUDA IPC. The parent copies them into its own memory before it lets go
of the child's, so the child can never reuse a block the training step still reads. Results come
back in the order the batches were sent.

Measured on one-H200 hosts without MPS (BENCHMARKS.md): 0.78x-0.87x the in-thread decoder's
images/s. The child decoded at a third of the in-thread rate while busy: its CUDA context shares
the GPU with the training process's by time slices. Hence ``data.decode_process`` is off by default.
"""

from __future__ import annotations

import dataclasses
import queue
import traceback
import weakref

import torch

from mmscale.data.gpu_decode import GpuDecoder, assemble_batch
from mmscale.data.gpu_raw import RawBatch
from mmscale.data.batch import Batch

START_TIMEOUT_S = 300.0  # spawning Python, importing torch and creating a CUDA context
_POLL_S = 1.0  # how often a wait for the child checks that it is still alive
_COLLECT_EVERY = 8  # batches between releases of IPC blocks the parent has let go


def _serve(image_size: int, max_pixels: int, device: str, library: str, jobs, results) -> None:
    """Child process body: decode jobs until ``None``; every answer is ("ok"|"error"|"ready", ...)."""
    torch.set_num_threads(1)
    try:
        decoder = GpuDecoder(image_size, max_pixels, device, library)
        cuda = decoder.device.type == "cuda"
        stream = torch.cuda.Stream(device=decoder.device) if cuda else None
    except BaseException:  # reported to the parent, which raises it
        results.put(("error", traceback.format_exc()))
        return
    results.put(("ready", None))
    done = 0
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            if cuda:
                with torch.cuda.stream(stream):
                    pixels, keep = decoder.timed_pixels(job)
                stream.synchronize()  # the parent reads these bytes on its own streams
            else:
                pixels, keep = decoder.timed_pixels(job)
            stats = (decoder.busy_s, decoder.busy_cpu_s, decoder.images)
            results.put(("ok", (pixels, keep, job.skips, stats)))
        except BaseException:
            results.put(("error", traceback.format_exc()))
        done += 1
        if cuda and done % _COLLECT_EVERY == 0:
            torch.cuda.ipc_collect()


def _stop(process, jobs) -> None:
    """Ask the child to finish, then make sure it has (finalizer: no reference to the owner)."""
    if process.is_alive():
        try:
            jobs.put(None)
        except (OSError, ValueError):  # queue already closed
            pass
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


class DecodeProcess:
    """A ``GpuDecoder`` in a spawned child process; ``submit`` a ``RawBatch``, then ``receive`` it
    decoded, in order. It keeps the child's busy time (``busy_s``, ``busy_cpu_s``, ``images``) as
    ``GpuDecoder`` does, so benchmarks read both alike."""

    def __init__(self, image_size: int, max_pixels: int, device: torch.device | str,
                 library: str = "torchvision", start_timeout_s: float = START_TIMEOUT_S):
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.image_size, self.max_pixels, self.device = image_size, max_pixels, device
        self.busy_s = self.busy_cpu_s = 0.0
        self.images = 0
        self.outstanding = 0  # submitted, not yet received
        ctx = torch.multiprocessing.get_context("spawn")
        self.jobs, self.results = ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(image_size, max_pixels, str(device), library, self.jobs, self.results),
                                   name="mmscale-gpu-decode", daemon=True)
        self.process.start()
        self._finalizer = weakref.finalize(self, _stop, self.process, self.jobs)
        try:
            self._answer(start_timeout_s)
        except BaseException:
            self.close()
            raise

    def _answer(self, timeout_s: float | None = None):
        waited = 0.0
        while True:
            try:
                kind, payload = self.results.get(timeout=_POLL_S)
            except queue.Empty:
                waited += _POLL_S
                if not self.process.is_alive():
                    raise RuntimeError(f"the GPU decode process exited (exit code {self.process.exitcode})") from None
                if timeout_s is not None and waited >= timeout_s:
                    raise RuntimeError(f"the GPU decode process did not answer within {timeout_s:.0f} s") from None
                continue
            if kind == "error":
                raise RuntimeError(f"the GPU decode process failed:\n{payload}")
            return payload

    def submit(self, raw: RawBatch) -> None:
        """Send the pixel part of ``raw`` to the child (tokens and captions stay here)."""
        empty = torch.empty(0, dtype=torch.int64)
        self.jobs.put(dataclasses.replace(raw, input_ids=empty, attention_mask=empty, captions=[], indices=empty))
        self.outstanding += 1

    def receive(self, raw: RawBatch) -> Batch:
        """The oldest submitted batch, decoded; ``raw`` is the same batch as submitted. On CUDA the
        copy runs on the caller's current stream, which this waits for."""
        try:
            pixels, keep, skips, (self.busy_s, self.busy_cpu_s, self.images) = self._answer()
        finally:
            self.outstanding -= 1
        raw.skips = skips  # the child may have moved samples nvjpeg and PIL both refused to skips
        if pixels.is_cuda:
            own = pixels.clone()  # our memory: the child may reuse its block once we let go
            batch = assemble_batch(raw, own, keep, self.device)
            torch.cuda.current_stream(self.device).synchronize()  # copy done before the child's block goes
        else:
            batch = assemble_batch(raw, pixels, keep, self.device)
        return batch

    def discard_outstanding(self) -> None:
        """Receive and drop what was submitted and not received (a consumer that stopped early), so
        the next iteration's first answer is its own."""
        while self.outstanding > 0:
            self.outstanding -= 1
            self._answer()

    def close(self) -> None:
        """Stop the child process (also done at exit or when this object is collected)."""
        self._finalizer()
