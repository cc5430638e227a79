"""Worker side of the GPU decode path: read bytes, vet them, tokenize; no pixel work.

With ``decode=gpu`` a DataLoader worker no longer decodes JPEGs: it reads the file, parses the
header only (PIL, tens of microseconds) so bad samples are classified exactly as on the CPU path
(same ``SkipReason``, same counts), and ships the encoded bytes. The main process decodes whole
batches with nvjpeg (``gpu_decode``). Samples nvjpeg cannot take, or that would decode
differently from the CPU path, are decoded here by the CPU path instead and shipped as uint8:
non-JPEG formats, CMYK/YCCK and progressive JPEGs, JPEGs with an EXIF rotation, and JPEGs
without an end-of-image marker (truncated: the CPU path names them ``truncated_image``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmscale.data.image import decode_image, open_image
from mmscale.data.skips import SkipCounter

JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
EXIF_ORIENTATION = 0x0112


def is_jpeg(data: bytes) -> bool:
    return data[:3] == JPEG_SOI


def jpeg_complete(data: bytes) -> bool:
    """True when the stream ends with the end-of-image marker (trailing NUL padding allowed)."""
    return data.rstrip(b"\x00")[-2:] == JPEG_EOI


def gpu_decodable(data: bytes, max_image_pixels: int) -> bool:
    """Whether nvjpeg may decode this sample with the same result as the CPU path.

    Raises ``SampleSkip`` (from the CPU path's own header check) for a sample the CPU path would
    skip without decoding: not an image, corrupt header, too many pixels, empty.
    """
    img = open_image(data, max_image_pixels)  # header only; the CPU path's checks and reasons
    if img.format != "JPEG" or not jpeg_complete(data):
        return False
    if img.mode not in ("RGB", "L"):  # CMYK/YCCK: nvjpeg output would not match PIL's conversion
        return False
    if img.info.get("progressive") or img.info.get("progression"):
        return False
    try:
        orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: the CPU path ignores it too (exif_transpose no-op)
        orientation = 1
    return orientation in (0, 1)


@dataclass
class RawSample:
    """One vetted sample: encoded JPEG bytes for the GPU, or a CPU-decoded uint8 [3,S,S] image."""

    caption: str
    index: int
    jpeg: bytes | None = None  # the encoded stream
    image: torch.Tensor | None = None  # uint8 [3, S, S]


def prepare_sample(data: bytes, caption: str, index: int, image_size: int, max_image_pixels: int) -> RawSample:
    """Bytes of one sample -> ``RawSample``; raises ``SampleSkip`` exactly where the CPU path does."""
    if gpu_decodable(data, max_image_pixels):
        return RawSample(caption, index, jpeg=data)
    return RawSample(caption, index, image=decode_image(data, image_size, max_image_pixels))


@dataclass
class RawBatch:
    """A batch before decode. ``slots[k]`` says where sample k's pixels are: ("jpeg", j) is
    ``jpegs[j]``, ("image", j) is ``images[j]``. Samples skipped in the worker are already in
    ``skips``; samples the GPU decoder rejects are added there by the decoder.

    All JPEG streams travel in one flat buffer with offsets: a DataLoader worker moves every
    tensor it returns to shared memory one by one, and hundreds of small tensors per batch cost
    more than the bytes themselves."""

    jpeg_bytes: torch.Tensor  # uint8 [total bytes], the streams back to back
    jpeg_offsets: torch.Tensor  # int64 [n_jpeg + 1]
    images: torch.Tensor  # uint8 [n_image, 3, S, S], decoded by the CPU path in the worker
    slots: list[tuple[str, int]]
    input_ids: torch.Tensor  # int64 [B, L]
    attention_mask: torch.Tensor  # int64 [B, L]
    captions: list[str]
    indices: torch.Tensor  # int64 [B]
    skips: SkipCounter = field(default_factory=SkipCounter)
    paths: list[str] = field(default_factory=list)  # for naming a sample the GPU decoder rejects

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def jpegs(self) -> list[torch.Tensor]:
        """One 1-D uint8 view per JPEG stream (no copy)."""
        bounds = self.jpeg_offsets.tolist()
        return [self.jpeg_bytes[a:b] for a, b in zip(bounds, bounds[1:])]


def collate_raw(samples: list[RawSample], tokenizer, max_text_len: int,
                skips: SkipCounter | None = None, paths: list[str] | None = None,
                image_size: int = 224) -> RawBatch:
    """Tokenize the batch in one call and sort pixels into JPEG bytes vs ready images."""
    streams, images, slots = [], [], []
    for s in samples:
        if s.jpeg is not None:
            slots.append(("jpeg", len(streams)))
            streams.append(s.jpeg)
        else:
            slots.append(("image", len(images)))
            images.append(s.image)
    offsets = [0]
    for data in streams:
        offsets.append(offsets[-1] + len(data))
    flat = torch.frombuffer(bytearray(b"".join(streams)), dtype=torch.uint8) if offsets[-1] else \
        torch.empty(0, dtype=torch.uint8)
    if images:
        stacked = torch.stack(images)
    else:
        stacked = torch.empty(0, 3, image_size, image_size, dtype=torch.uint8)
    captions = [s.caption for s in samples]
    input_ids, attention_mask = tokenizer.encode_batch(captions, max_len=max_text_len)
    return RawBatch(flat, torch.tensor(offsets, dtype=torch.int64), stacked, slots, input_ids,
                    attention_mask, captions, torch.tensor([s.index for s in samples], dtype=torch.int64),
                    skips if skips is not None else SkipCounter(), paths or [])
