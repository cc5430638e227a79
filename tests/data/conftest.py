"""Small image-caption datasets made on the fly, good and bad, for the data tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


class FakeTokenizer:
    """Whitespace tokenizer with the real one's ``encode_batch`` contract (no vocabulary file)."""

    pad_id = 0

    def encode_batch(self, texts, max_len=16):
        ids = torch.zeros(len(texts), max_len, dtype=torch.int64)
        for row, text in enumerate(texts):
            tokens = [1 + len(w) for w in text.split()][:max_len]
            ids[row, :len(tokens)] = torch.tensor(tokens, dtype=torch.int64)
        return ids, (ids != 0).long()


def jpeg_bytes(w: int = 96, h: int = 64, seed: int = 0, mode: str = "RGB", fmt: str = "JPEG", **save) -> bytes:
    """A noisy gradient image (not flat colour, so decode errors would show)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    arr = np.clip(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2) + rng.normal(0, 10, (h, w, 3)), 0, 255)
    img = Image.fromarray(arr.astype(np.uint8), "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def exif_rotated_jpeg(size=(96, 72), quality=90) -> bytes:
    """Left half red; EXIF orientation 6 says "rotate 90 degrees clockwise to view"."""
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:, : size[0] // 2] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=quality)
    return buf.getvalue()


def write_shard(path: Path, samples: list[tuple[str, bytes]]) -> Path:
    """A WebDataset tar shard holding ``(member name, bytes)`` in order."""
    with tarfile.open(path, "w") as tar:
        for name, data in samples:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "w") as f:
        for row in rows:
            f.write(row if isinstance(row, str) else json.dumps(row))
            f.write("\n")
    return path


@pytest.fixture
def good_dataset(tmp_path) -> Path:
    """train.jsonl with 12 good samples (96x64 JPEGs) and val.jsonl with 4."""
    (tmp_path / "img").mkdir()
    for split, n, offset in (("train", 12, 0), ("val", 4, 100)):
        rows = []
        for i in range(n):
            name = f"img/{offset + i:03d}.jpg"
            (tmp_path / name).write_bytes(jpeg_bytes(seed=offset + i))
            rows.append({"image": name, "caption": f"sample number {offset + i} a red circle"})
        write_jsonl(tmp_path / f"{split}.jsonl", rows)
    return tmp_path


BAD_CLASSES = ("missing_file", "not_a_file", "empty_file", "truncated_image", "corrupt_image", "not_an_image",
               "too_many_pixels", "empty_caption", "malformed_line", "missing_field")


@pytest.fixture
def mixed_dataset(tmp_path) -> tuple[Path, dict]:
    """train.jsonl with 6 good samples and one sample of each bad class (in BAD_CLASSES order).

    Returns (manifest, {reason: manifest line}). The pixel-limit case is a real 3000x3000 PNG,
    over the 4M-pixel limit the tests pass as max_image_pixels.
    """
    d = tmp_path
    (d / "img").mkdir()
    rows, lines = [], {}
    for i in range(3):
        (d / f"img/good{i}.jpg").write_bytes(jpeg_bytes(seed=i))
        rows.append({"image": f"img/good{i}.jpg", "caption": f"good sample {i}"})
    full = jpeg_bytes(seed=9)
    (d / "img/truncated.jpg").write_bytes(full[: len(full) // 2])
    (d / "img/corrupt.jpg").write_bytes(full[:200] + bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)))
    (d / "img/empty.jpg").write_bytes(b"")
    (d / "img/notes.jpg").write_text("this is a text file, not an image\n" * 20)
    (d / "img/adir.jpg").mkdir()
    Image.new("L", (3000, 3000)).save(d / "img/bomb.png")
    bad = {
        "missing_file": {"image": "img/nope.jpg", "caption": "missing"},
        "not_a_file": {"image": "img/adir.jpg", "caption": "a directory"},
        "empty_file": {"image": "img/empty.jpg", "caption": "empty"},
        "truncated_image": {"image": "img/truncated.jpg", "caption": "truncated"},
        "corrupt_image": {"image": "img/corrupt.jpg", "caption": "corrupt"},
        "not_an_image": {"image": "img/notes.jpg", "caption": "text"},
        "too_many_pixels": {"image": "img/bomb.png", "caption": "bomb"},
        "empty_caption": {"image": "img/good0.jpg", "caption": "   \t "},
        "malformed_line": '{"image": "img/good0.jpg", "caption": "unterminated',
        "missing_field": {"caption": "no image field"},
    }
    for reason in BAD_CLASSES:
        rows.append(bad[reason])
        lines[reason] = len(rows)
    for i in range(3, 6):
        (d / f"img/good{i}.jpg").write_bytes(jpeg_bytes(seed=i))
        rows.append({"image": f"img/good{i}.jpg", "caption": f"good sample {i}"})
    return write_jsonl(d / "train.jsonl", rows), lines


@pytest.fixture(scope="session")
def tokenizer():
    from mmscale.data.tokenizer import load_tokenizer

    return load_tokenizer()
