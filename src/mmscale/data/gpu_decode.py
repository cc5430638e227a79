"""Main-process side of the GPU decode path: nvjpeg batch decode, resize and prefetch.

Workers ship encoded bytes (``gpu_raw``) and the device decodes them.

- ``decode_jpegs``: one batched ``decode_jpeg`` call, TorchCodec's when it is installed, else
  torchvision's (deprecated since 0.29 in favour of TorchCodec; both run nvjpeg on CUDA and
  libjpeg-turbo on CPU; on CPU TorchCodec applies the EXIF orientation, torchvision does not);
  if it raises (one bad stream fails the whole batch), each image is retried alone and the
  failures go back to the CPU path, which either decodes them or names the reason, so skips
  match ``decode=cpu`` exactly.
- ``resize_to_square``: antialiased bilinear to ``S x S`` (the reference ``Resize((S, S))``),
  batched over images of equal size; output uint8 like the CPU path's ``Batch.images``.
- ``gpu_prefetch.GpuDecodeLoader`` runs the decoder ahead of the training step.
"""

from __future__ import annotations

import collections
import functools
import io
import logging
import time
import warnings

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.io import ImageReadMode
from torchvision.io import decode_jpeg as torchvision_decode_jpeg

from mmscale.data.batch import Batch
from mmscale.data.gpu_raw import RawBatch
from mmscale.data.image import SampleSkip, decode_image
from mmscale.errors import ConfigError

log = logging.getLogger(__name__)
# Why decode on the device: on one H100 with 16 cores (~60 kB 640x480 JPEGs) 16 workers running the
# reference transform reach 2,614 img/s, nvjpeg batch decode + GPU resize 10,284 (decode alone
# 15,208), so a CPU pipeline cannot feed ``base`` (``mmscale bench gpu-decode`` measures both paths).


def torchcodec_jpegs(jpegs: list[torch.Tensor], device: torch.device | str) -> list[torch.Tensor]:
    # imported here: torchcodec's native library may not load against this torch, and jpeg_backend()
    # names this entry only where it does
    from torchcodec.decoders import decode_jpeg

    return decode_jpeg(jpegs, mode="RGB", device=device)


def torchvision_jpegs(jpegs: list[torch.Tensor], device: torch.device | str) -> list[torch.Tensor]:
    with warnings.catch_warnings():  # its deprecation in favour of TorchCodec: why TorchCodec comes first
        warnings.simplefilter("ignore", DeprecationWarning)
        return list(torchvision_decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device))


# Batch JPEG decoders, one signature: encoded uint8 tensors -> uint8 [3, h, w] each on ``device``.
JPEG_DECODERS = {"torchcodec": torchcodec_jpegs, "torchvision": torchvision_jpegs}


@functools.cache
def jpeg_backend() -> str:
    """``torchcodec`` when it loads here, else ``torchvision``. On CUDA torchvision's nvjpeg batch
    call ran 1.07x TorchCodec's, but it ignores EXIF orientation, which the server's requests need."""
    try:
        import torchcodec.decoders  # noqa: F401  (loads its native image library)
    except Exception as exc:  # not installed (ImportError), or built for another torch (OSError, RuntimeError)
        log.debug("TorchCodec unavailable (%s: %s); decoding JPEGs with torchvision", type(exc).__name__, exc)
        return "torchvision"
    return "torchcodec"


def decode_jpegs(jpegs: list[torch.Tensor], device: torch.device | str,
                 backend: str | None = None) -> list[torch.Tensor | None]:
    """Encoded JPEGs -> uint8 [3, h, w] on ``device`` each; None where the decoder refused one.
    ``backend``: a ``JPEG_DECODERS`` name (default: ``jpeg_backend()``)."""
    if not jpegs:
        return []
    decode = JPEG_DECODERS[backend or jpeg_backend()]
    try:
        return list(decode(jpegs, device))
    except (RuntimeError, ValueError) as exc:
        log.debug("batch decode failed (%s); retrying %d images one by one", exc, len(jpegs))
    out: list[torch.Tensor | None] = []
    for data in jpegs:
        try:
            (image,) = decode([data], device)
            out.append(image)
        except (RuntimeError, ValueError):
            out.append(None)
    return out


def resize_to_square(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """uint8 [3, h_i, w_i] images on one device -> uint8 [B, 3, size, size].

    Images of the same (h, w) are resized in one call; datasets of camera images have few
    distinct sizes, so this is a handful of kernels per batch rather than one per image.
    """
    if not images:
        raise ValueError("resize_to_square needs at least one image")
    device = images[0].device
    out = torch.empty(len(images), 3, size, size, dtype=torch.uint8, device=device)
    groups: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for k, img in enumerate(images):
        groups[tuple(img.shape[-2:])].append(k)
    for (h, w), members in groups.items():
        stack = torch.stack([images[k] for k in members])  # (G, 3, h, w) uint8
        if (h, w) == (size, size):
            resized = stack
        else:
            x = F.interpolate(stack.float(), size=(size, size), mode="bilinear",
                              align_corners=False, antialias=True)
            resized = x.round_().clamp_(0, 255).to(torch.uint8)
        index = torch.tensor(members, device=device)
        out.index_copy_(0, index, resized)
    return out


class GpuDecoder:
    """``RawBatch`` -> ``Batch`` with uint8 images on ``device`` (same skips as the CPU path).

    It keeps the host time spent in its calls (``busy_s``, ``busy_cpu_s``: wall and the calling
    thread's CPU) and the images it decoded, so a benchmark can tell a decode-bound input path
    (images / busy_s near the pipeline's rate) from one whose decoder waits for raw batches.
    """

    def __init__(self, image_size: int, max_image_pixels: int, device: torch.device | str):
        self.image_size, self.max_image_pixels = image_size, max_image_pixels
        self.device = torch.device(device)
        self.busy_s = self.busy_cpu_s = 0.0
        self.images = 0
        self.decode_jpegs = lambda jpegs: decode_jpegs(jpegs, self.device)

    def cpu_fallback(self, raw: RawBatch, slot: int, stream: torch.Tensor) -> torch.Tensor | None:
        """Decode a JPEG nvjpeg refused with the CPU path; count the skip if that fails too."""
        data = stream.numpy().tobytes()
        try:
            return decode_image(data, self.image_size, self.max_image_pixels).to(self.device)
        except SampleSkip as skip:
            where = raw.paths[slot] if slot < len(raw.paths) else f"batch sample {slot}"
            raw.skips.used -= 1  # counted as used in the worker; now it is a skip
            raw.skips.add(skip.reason, where, detail=skip.detail)
            return None

    def __call__(self, raw: RawBatch) -> Batch:
        pixels, keep = self.timed_pixels(raw)
        return assemble_batch(raw, pixels, keep, self.device)

    def timed_pixels(self, raw: RawBatch) -> tuple[torch.Tensor, list[int]]:
        """``decode_pixels`` with its wall and CPU time added to ``busy_s`` and ``busy_cpu_s``."""
        wall, cpu = time.perf_counter(), time.thread_time()
        pixels, keep = self.decode_pixels(raw)
        self.busy_s += time.perf_counter() - wall
        self.busy_cpu_s += time.thread_time() - cpu
        self.images += len(keep)
        return pixels, keep

    def decode_pixels(self, raw: RawBatch) -> tuple[torch.Tensor, list[int]]:
        """uint8 [n, 3, S, S] on the device for the samples kept, and their slots in ``raw``.

        Samples neither nvjpeg nor the CPU path can decode are moved to ``raw.skips`` here."""
        jpegs = raw.jpegs
        decoded = self.decode_jpegs(jpegs)
        images, keep = [], []
        for k, (kind, j) in enumerate(raw.slots):
            if kind == "jpeg":
                img = decoded[j]
                if img is None:
                    img = self.cpu_fallback(raw, k, jpegs[j])
            else:  # CPU-decoded in the worker, already S x S: one small H2D copy
                img = raw.images[j].to(self.device, non_blocking=True)
            if img is not None:
                images.append(img)
                keep.append(k)
        if images:
            pixels = resize_to_square(images, self.image_size)
        else:
            pixels = torch.empty(0, 3, self.image_size, self.image_size, dtype=torch.uint8, device=self.device)
        return pixels, keep


def assemble_batch(raw: RawBatch, pixels: torch.Tensor, keep: list[int], device: torch.device) -> Batch:
    """The decoded pixels of the kept slots + their tokens, captions and indices -> ``Batch``."""
    if len(keep) == len(raw.slots):
        ids, mask, captions, indices = raw.input_ids, raw.attention_mask, raw.captions, raw.indices
    else:
        rows = torch.tensor(keep, dtype=torch.int64)
        ids, mask, indices = raw.input_ids[rows], raw.attention_mask[rows], raw.indices[rows]
        captions = [raw.captions[k] for k in keep]
    return Batch(pixels, ids.to(device, non_blocking=True), mask.to(device, non_blocking=True),
                 captions, raw.skips, indices)


def nvjpeg_available(device: torch.device | str = "cuda") -> tuple[bool, str]:
    """Probe the GPU decoder with one tiny JPEG; (ok, reason when not)."""
    if not torch.cuda.is_available():
        return False, "CUDA is not available"
    try:
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, format="JPEG")
        (image,) = decode_jpegs([torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)], device)
        if image is None:
            return False, "nvjpeg refused a valid JPEG"
    except Exception as exc:  # a probe: report why, never fail
        return False, f"nvjpeg decode failed: {type(exc).__name__}: {exc}"
    return True, ""


def resolve_decode(decode: str, device: torch.device | str) -> tuple[str, str]:
    """``cpu|gpu|auto`` + device -> (``cpu`` or ``gpu``, reason for the choice)."""
    device = torch.device(device)
    if decode == "cpu":
        return "cpu", "decode=cpu"
    ok, why = (False, "device is not CUDA") if device.type != "cuda" else nvjpeg_available(device)
    if decode == "gpu" and not ok:
        raise ConfigError("data.decode", f"gpu decode unavailable: {why}; use decode=cpu or auto")
    if decode == "auto":
        return ("gpu", "auto: nvjpeg available") if ok else ("cpu", f"auto: {why}")
    return "gpu", "decode=gpu"
