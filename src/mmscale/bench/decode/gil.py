"""Does torchvision's JPEG decode let other Python threads run while it works?

Why: in the GPU input path one thread reads raw batches from the DataLoader while another decodes
them with nvjpeg, yet on an H200 host the pipeline ran at about 1 / (1/read + 1/decode), as if the
two never overlapped (docs/notes/gpu-decode-and-the-gil.md). If the decode call held the GIL, that
would explain it. ``measure`` times, in one run, on ``device`` (cpu: ``decode_jpeg`` one image at a
time; cuda: the batched nvjpeg call the pipeline makes):

- how far a pure-Python thread gets per second alone, and while the main thread decodes
  (``python_progress_ratio`` near 1: the decode releases the GIL; near 0: it holds it);
- images/s from one decoding thread and from two at once;
- images/s of the decoding thread while the pure-Python thread runs (``decode_beside_python_ratio``
  near 1: the decoder gets the GIL back at once after each call; well below 1: it waits for the
  other thread's switch interval, the convoy a reader thread beside the decoder would cause);
and ``boxed_list_op``, on any device, how many times a ``torch.ops`` call taking a list of tensors
takes the GIL back (an ATen op on CPU tensors; torchvision's batched decode is such a call).
"""

from __future__ import annotations

import io
import sys
import threading
import time

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg


def make_jpegs(count: int, width: int, height: int) -> list[torch.Tensor]:
    """Photo-like JPEGs (gradient + noise, quality 85) as 1-D uint8 tensors."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 190, width)[None, :, None]
    out = []
    for _ in range(count):
        pixels = (rng.random((height, width, 3)) * 60 + ramp).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
        out.append(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8))
    return out


def decoder(device: torch.device, jpegs: list[torch.Tensor], batch: int):
    """A callable decoding ``n`` images the way the product does on ``device``."""
    if device.type == "cuda":
        chunks = [jpegs[k:k + batch] for k in range(0, len(jpegs) - batch + 1, batch)]

        def run(n: int) -> None:
            for k in range(max(n // batch, 1)):
                decode_jpeg(chunks[k % len(chunks)], mode=ImageReadMode.RGB, device=device)
            torch.cuda.synchronize(device)
        return run

    def run(n: int) -> None:
        for k in range(n):
            decode_jpeg(jpegs[k % len(jpegs)], mode=ImageReadMode.RGB)
    return run


def python_progress(seconds: float, alongside=None) -> tuple[float, float]:
    """(loop iterations per second of a pure-Python thread, seconds ``alongside()`` took), alone or
    while ``alongside()`` runs in this thread."""
    stop, count = threading.Event(), [0]

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=spin)
    start = time.perf_counter()
    thread.start()
    if alongside is None:
        time.sleep(seconds)
    else:
        alongside()
    took = time.perf_counter() - start
    stop.set()
    thread.join()
    return count[0] / (time.perf_counter() - start), took


def boxed_list_op(count: int) -> dict:
    """How often a ``torch.ops`` call taking a list of ``count`` tensors takes the GIL back.

    torchvision's batched decode is such a call (``torch.ops.image.decode_jpegs_cuda``). This
    times the same kind of call with an ATen op (``torch.ops.aten.cat.default``) on tiny CPU
    tensors, alone and beside a spinning Python thread: each time the call takes the GIL back it
    waits out the spinner's switch interval, so (beside - alone) / interval counts the takes.
    ``torch.cat`` (the Python binding, not boxed) is the contrast: one take, when it returns."""
    tensors = [torch.zeros(16, dtype=torch.uint8) for _ in range(count)]
    out = {}
    for name, call in (("torch_ops", lambda: torch.ops.aten.cat.default(tensors)),
                       ("binding", lambda: torch.cat(tensors))):
        start = time.perf_counter()
        for _ in range(20):
            call()
        alone = (time.perf_counter() - start) / 20
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                pass

        spinner = threading.Thread(target=spin)
        spinner.start()
        time.sleep(0.05)  # the spinner holds the GIL before the first call
        start = time.perf_counter()
        for _ in range(5):
            call()
        beside = (time.perf_counter() - start) / 5
        stop.set()
        spinner.join()
        out[name] = {"alone_ms": 1e3 * alone, "beside_ms": 1e3 * beside,
                     "gil_takes_per_call": (beside - alone) / sys.getswitchinterval()}
    return out


def measure(device: torch.device, n: int, batch: int, width: int, height: int) -> dict:
    """The decoder alone, from two threads, and beside a pure-Python thread (see the module's doc)."""
    jpegs = make_jpegs(min(n, 256), width, height)
    run = decoder(device, jpegs, batch)
    run(batch * 2)  # warm-up: the decoder's handles and buffers
    start = time.perf_counter()
    run(n)
    one = n / (time.perf_counter() - start)
    threads = [threading.Thread(target=run, args=(n // 2,)) for _ in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    two = n / (time.perf_counter() - start)
    alone, _ = python_progress(0.5)
    during, decode_s = python_progress(0.0, alongside=lambda: run(n))
    return {"device": str(device), "images": n, "batch": batch if device.type == "cuda" else 1,
            "one_thread_img_per_s": one, "two_threads_img_per_s": two, "two_over_one": two / one,
            "python_progress_alone_per_s": alone, "python_progress_while_decoding_per_s": during,
            "python_progress_ratio": during / alone,
            "decode_beside_python_img_per_s": n / decode_s, "decode_beside_python_ratio": n / decode_s / one}


def bench_decode_gil(device: torch.device, n: int, batch: int, width: int, height: int) -> dict:
    """``measure`` and ``boxed_list_op`` for lists of 16 and 256 tensors, as one result."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU decode is one image per call; intra-op threads would blur it
    try:
        result = measure(device, n, batch, width, height)
        result["boxed_list_op"] = {str(count): boxed_list_op(count) for count in (16, 256)}
    finally:
        torch.set_num_threads(threads)
    return result


def format_gil(result: dict) -> str:
    lines = [f"{key:40s} {value:.3f}" if isinstance(value, float) else f"{key:40s} {value}"
             for key, value in result.items() if key != "boxed_list_op"]
    for count, calls in result["boxed_list_op"].items():
        for name, r in calls.items():
            lines.append(f"{'list of ' + count + ' tensors, ' + name:40s} alone {r['alone_ms']:.3f} ms, beside a "
                         f"busy thread {r['beside_ms']:.1f} ms: {r['gil_takes_per_call']:.1f} GIL takes per call")
    return "\n".join(lines)
