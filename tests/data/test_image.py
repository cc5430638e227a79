"""CPU decode: odd-but-good inputs become RGB uint8 [3, S, S]; bad ones are skips with a reason."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from mmscale.data.image import SampleSkip, decode_image, load_image
from mmscale.data.skips import SkipReason
from tests.data.conftest import exif_rotated_jpeg, jpeg_bytes


def encode(img: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def check(out: torch.Tensor, size: int = 32) -> np.ndarray:
    assert out.dtype == torch.uint8 and tuple(out.shape) == (3, size, size)
    return out.permute(1, 2, 0).numpy()


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "LA", "1"])
def test_modes_become_rgb(mode):
    img = Image.new("RGB", (40, 30), (200, 40, 40)).convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    check(decode_image(encode(img, fmt), 32))


def test_cmyk_colour_is_kept():
    arr = check(decode_image(encode(Image.new("RGB", (40, 30), (200, 40, 40)).convert("CMYK"), "JPEG"), 32))
    r, g, b = arr.reshape(-1, 3).mean(0)
    assert r > 150 and g < 90 and b < 90


def test_16_bit_grey_is_rescaled_not_clipped():
    arr16 = np.full((20, 20), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    img = Image.fromarray(arr16)
    assert img.mode.startswith("I;16")
    arr = check(decode_image(encode(img), 32))
    assert abs(int(arr.mean()) - 128) <= 2


def test_transparency_composites_on_white():
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent red
    assert check(decode_image(encode(img), 32)).min() >= 250
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert check(decode_image(encode(pal, transparency=0), 32)).min() >= 250


def test_exif_orientation_is_applied():
    out = check(decode_image(exif_rotated_jpeg(size=(60, 40), quality=95), 32)).astype(int)
    top, bottom = out[:8].reshape(-1, 3).mean(0), out[-8:].reshape(-1, 3).mean(0)
    assert top[0] > 200  # the left half is red: on top after rotation
    assert bottom[0] < 60


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_other_formats(fmt):
    check(decode_image(jpeg_bytes(50, 40, mode="RGB" if fmt != "GIF" else "P", fmt=fmt), 32))


def test_tiny_image_is_upscaled():
    arr = check(decode_image(encode(Image.new("RGB", (1, 1), (10, 200, 30))), 32))
    assert (arr == (10, 200, 30)).all()


def test_draft_is_close_to_full_decode_and_to_reference_resize():
    data = jpeg_bytes(640, 480, seed=3, quality=90)
    fast = decode_image(data, 224).float()
    full = decode_image(data, 224, draft=False).float()
    reference = transforms.Resize((224, 224))(Image.open(io.BytesIO(data)).convert("RGB"))
    ref = torch.from_numpy(np.asarray(reference).copy()).permute(2, 0, 1).float()
    assert (full - ref).abs().max() <= 1  # same squash + antialiased bilinear as Resize((224, 224))
    assert (fast - ref).abs().mean() < 2.5  # DCT-domain 1/2 downscale first: about one grey level


def skip_reason(data=None, path=None, max_image_pixels=64_000_000) -> str:
    with pytest.raises(SampleSkip) as info:
        if path is not None:
            load_image(str(path), 32, max_image_pixels)
        else:
            decode_image(data, 32, max_image_pixels)
    return info.value.reason


def test_bad_inputs(tmp_path):
    full = jpeg_bytes(200, 150, seed=1)
    assert skip_reason(full[: len(full) // 2]) == SkipReason.truncated_image
    assert skip_reason(b"") == SkipReason.empty_file
    assert skip_reason(b"hello, not an image" * 10) == SkipReason.not_an_image
    assert skip_reason(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64) == SkipReason.corrupt_image
    assert skip_reason(full, max_image_pixels=100 * 100) == SkipReason.too_many_pixels
    assert skip_reason(path=tmp_path / "missing.jpg") == SkipReason.missing_file
    assert skip_reason(path=tmp_path) == SkipReason.not_a_file
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert skip_reason(path=tmp_path / "empty.jpg") == SkipReason.empty_file


def test_decompression_bomb_header_is_refused_before_decoding():
    # A 6000x6000 PNG (a few kB compressed): refused from its header alone.
    big = encode(Image.new("1", (6000, 6000)))
    assert len(big) < 100_000
    assert skip_reason(big, max_image_pixels=10_000_000) == SkipReason.too_many_pixels
