"""The JPEG set ``mmscale bench gpu-decode`` reads: photo-like 640x480 images (smooth shapes + sensor
noise, about 60 kB at quality 85) with captions, written once and reused while the count matches."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
from PIL import Image

WORDS = "a red dog runs on the green grass near two small boats under blue sky with clouds".split()


def photo(args: tuple[int, str, int, int]) -> tuple[str, int]:
    """Write photo ``i`` into ``out_dir``: (its file name, its bytes)."""
    i, out_dir, width, height = args
    rng = np.random.default_rng(i)
    low = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(low, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 13, (height, width, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    name = f"img_{i:06d}.jpg"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    (Path(out_dir) / name).write_bytes(buf.getvalue())
    return name, len(buf.getvalue())


def make_dataset(out_dir: Path, n: int, width: int, height: int) -> dict:
    """``n`` photos and OUT_DIR/train.jsonl (kept when it already lists ``n``): the set's description."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "train.jsonl"
    if manifest.is_file() and sum(1 for _ in open(manifest)) == n:
        sizes = [os.path.getsize(out_dir / json.loads(x)["image"]) for x in open(manifest)]
    else:
        with mp.get_context("fork").Pool(os.cpu_count()) as pool:
            made = pool.map(photo, [(i, str(out_dir), width, height) for i in range(n)], chunksize=16)
        rng = np.random.default_rng(0)
        with open(manifest, "w") as f:
            for name, _ in made:
                caption = " ".join(rng.choice(WORDS, size=int(rng.integers(6, 20))))
                f.write(json.dumps({"image": name, "caption": caption}) + "\n")
        sizes = [s for _, s in made]
    return {"n": n, "mean_kb": float(np.mean(sizes)) / 1e3, "width": width, "height": height}
