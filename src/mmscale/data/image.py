"""CPU image decode: bytes or path -> uint8 ``[3, S, S]``, or a ``SampleSkip`` naming the reason.

Matches the reference ``Resize((S, S))`` (squash, antialiased bilinear) but decodes JPEGs at a
reduced DCT scale first (``Image.draft``: 1/2, 1/4 or 1/8, never below S), which skips most of
the IDCT and resize work; the result differs from a full decode by about one grey level on
average (tests/data/test_image.py measures it). No float work here: the worker ships uint8
and normalization runs on the device.
"""

from __future__ import annotations

import io
import os
import stat
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mmscale.data.skips import SkipReason

# Magic numbers of formats we accept: bytes that start like this but fail are corrupt, not foreign.
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
TRUNCATION_HINTS = ("truncated", "premature end", "broken data stream", "unexpected end", "buffer is not large enough")


# What PIL raises on a bad file: each maps to one skip reason through decode_skip.
DECODE_ERRORS = (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError)


def decode_skip(exc: BaseException) -> SampleSkip:
    """The skip a decode failure counts as, shared by every decode path so reasons agree."""
    if isinstance(exc, Image.DecompressionBombError):
        return SampleSkip(SkipReason.too_many_pixels, str(exc))
    text = str(exc)
    truncated = any(hint in text.lower() for hint in TRUNCATION_HINTS)
    return SampleSkip(SkipReason.truncated_image if truncated else SkipReason.corrupt_image, text)


class SampleSkip(Exception):
    """A sample that cannot be used; ``reason`` is a ``SkipReason`` value."""

    def __init__(self, reason: SkipReason, detail: str = ""):
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason, self.detail = reason, detail


def read_bytes(path: str) -> bytes:
    """The file's bytes, or ``SampleSkip`` for missing / directory / empty / unreadable files."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SampleSkip(SkipReason.missing_file) from None
    except OSError as exc:
        raise SampleSkip(SkipReason.unreadable_file, str(exc)) from None
    except (ValueError, UnicodeEncodeError) as exc:  # a NUL byte or an unencodable character in the path
        raise SampleSkip(SkipReason.bad_text, f"image path is not a file name ({exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise SampleSkip(SkipReason.not_a_file, "directory" if stat.S_ISDIR(st.st_mode) else "special file")
    if st.st_size == 0:
        raise SampleSkip(SkipReason.empty_file)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise SampleSkip(SkipReason.unreadable_file, str(exc)) from None


def open_image(data: bytes, max_image_pixels: int) -> Image.Image:
    """Parse the header only; refuses images over ``max_image_pixels`` before any pixel is decoded."""
    if not data:
        raise SampleSkip(SkipReason.empty_file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise SampleSkip(SkipReason.too_many_pixels, str(exc)) from None
    except UnidentifiedImageError:
        known = data.startswith(IMAGE_MAGIC)
        raise SampleSkip(SkipReason.corrupt_image if known else SkipReason.not_an_image,
                         "header not parseable" if known else "unknown format") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise SampleSkip(SkipReason.corrupt_image, str(exc)) from None
    width, height = img.size
    if width * height > max_image_pixels:
        raise SampleSkip(SkipReason.too_many_pixels, f"{width}x{height} > {max_image_pixels} pixels")
    if width < 1 or height < 1:
        raise SampleSkip(SkipReason.corrupt_image, f"size {width}x{height}")
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Any mode -> RGB. 16/32-bit greyscale is rescaled (not clipped); alpha is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        if arr.dtype.itemsize > 1:
            top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
            arr = np.clip(arr.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "F":
        arr = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def decode_image(data: bytes, image_size: int = 224, max_image_pixels: int = 64_000_000,
                 draft: bool = True) -> torch.Tensor:
    """Encoded image bytes -> uint8 ``[3, image_size, image_size]`` (C, H, W).

    Raises ``SampleSkip`` for anything that is not a usable image.
    """
    img = open_image(data, max_image_pixels)
    try:
        if draft and img.format == "JPEG":
            # Largest DCT scale-down whose output is still >= image_size on both sides.
            img.draft("RGB" if img.mode == "RGB" else None, (image_size, image_size))
        img = ImageOps.exif_transpose(img) or img  # loads the pixels
        img.load()
        img = to_rgb(img)
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
        arr = np.array(img)  # (H, W, 3) uint8, writable (torch refuses read-only buffers)
    except SampleSkip:
        raise
    except DECODE_ERRORS as exc:
        raise decode_skip(exc) from None
    return torch.from_numpy(arr).permute(2, 0, 1)  # (3, H, W) view of HWC memory


def load_image(path: str, image_size: int = 224, max_image_pixels: int = 64_000_000,
               draft: bool = True) -> torch.Tensor:
    """``decode_image`` of the file at ``path``."""
    return decode_image(read_bytes(path), image_size, max_image_pixels, draft)
