"""JPEG decode side by side in one process: PIL, torchvision and TorchCodec on CPU, nvjpeg batches on CUDA.

One thread, as in a DataLoader worker; ``n`` synthetic 640x480 scenes (the ``data synth`` set);
rows alternate within each repeat so that load on the machine falls on all of them. ``decode``
rows decode to full size; ``to S`` rows give what the training path needs, uint8 [3, S, S]:
PIL decodes at a reduced DCT scale first (``mmscale.data.image``), the tensor decoders decode in
full and resize with ``resize_to_square`` (the GPU path's resize).
"""

from __future__ import annotations

import io
import statistics
import time

import numpy as np
import torch
from PIL import Image

from mmscale.data.gpu_decode import resize_to_square, torchcodec_jpegs, torchvision_jpegs
from mmscale.data.image import decode_image
from mmscale.data.synth_scene import render_scene


def cpu_rows(size: int) -> dict:
    """Row name -> callable(encoded bytes, the same as a uint8 tensor)."""
    def vision(t):
        return torchvision_jpegs([t], "cpu")[0]

    def codec(t):
        return torchcodec_jpegs([t], "cpu")[0]

    return {
        "pil decode": lambda b, t: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")),
        "torchvision decode": lambda b, t: vision(t),
        "torchcodec decode": lambda b, t: codec(t),
        f"pil to {size} (CPU path)": lambda b, t: decode_image(b, size),
        f"torchvision to {size}": lambda b, t: resize_to_square([vision(t)], size),
        f"torchcodec to {size}": lambda b, t: resize_to_square([codec(t)], size),
    }


def gpu_rows(size: int, batch: int) -> dict:
    """Row name -> callable(list of encoded tensors): nvjpeg batch decode (+ the GPU resize), synced."""
    def timed(decode, resize):
        def run(tensors):
            for start in range(0, len(tensors), batch):
                images = decode(tensors[start:start + batch], "cuda")
                if resize:
                    resize_to_square(images, size)
            torch.cuda.synchronize()  # host-device sync: the pass is timed to its last image
        return run

    return {f"{name} cuda batch{batch}{f' to {size}' if resize else ''}": timed(decode, resize)
            for resize in (False, True) for name, decode in (("torchvision", torchvision_jpegs),
                                                             ("torchcodec", torchcodec_jpegs))}


def bench_decode_backends(n: int, repeats: int, size: int, batch: int) -> list[dict]:
    """One row per decoder: the median img/s of ``repeats`` passes over ``n`` images, each pass's
    figure, and the images' mean size. CUDA rows only where CUDA is."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread, as in a DataLoader worker
    try:
        blobs = [render_scene(0, i)[0] for i in range(n)]
        tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
        decoders = cpu_rows(size)
        img_per_s: dict[str, list[float]] = {name: [] for name in decoders}
        for _ in range(repeats):
            for name, decode in decoders.items():
                start = time.perf_counter()
                for b, t in zip(blobs, tensors):
                    decode(b, t)
                img_per_s[name].append(n / (time.perf_counter() - start))
        if torch.cuda.is_available():  # the GPU input path: whole batches to nvjpeg, one sync per pass
            gpu = gpu_rows(size, batch)
            for decode in gpu.values():
                decode(tensors)  # warm-up: CUDA context, nvjpeg handles
            for name in gpu:
                img_per_s[name] = []
            for _ in range(repeats):
                for name, decode in gpu.items():
                    start = time.perf_counter()
                    decode(tensors)
                    img_per_s[name].append(n / (time.perf_counter() - start))
    finally:
        torch.set_num_threads(threads)
    return [{"row": name, "img_per_s": statistics.median(v), "img_per_s_runs": v,
             "threads": 1 if "cuda" not in name else None, "images": n,
             "mean_bytes": sum(map(len, blobs)) / len(blobs)} for name, v in img_per_s.items()]
