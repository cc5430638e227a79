"""Request payloads for the load generator: real JPEGs and captions from a dataset, or generated.

Payloads are built once, before any timing, and shipped to every client process.
"""

from __future__ import annotations

import base64
import io
import random
from urllib.parse import urlencode

import numpy as np
from PIL import Image

from mmscale.bench.load.client import Payload
from mmscale.data.readers import read_manifest
from mmscale.data.skips import SkipCounter
from mmscale.errors import DataError
from mmscale.strict_json import dumps

WORDS = ("a red cube on a blue floor two green spheres near a small yellow cone a large white "
         "cylinder beside three purple rings under bright light in a dark room").split()
ENDPOINTS = ("match", "embed_image", "embed_text")
FORMATS = ("raw", "json")  # image as the body (captions in the query) or JSON with the image in base64


def random_caption(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14)))


def generated_jpeg(rng: random.Random, width: int = 320, height: int = 240) -> bytes:
    """A noisy (hence realistically sized, ~20-40 kB) JPEG."""
    arr = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    img = Image.fromarray(arr).resize((width, height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def dataset_samples(dataset: str, n: int, split: str = "val") -> list[tuple[bytes, str]]:
    """Up to ``n`` (jpeg bytes, caption) pairs from a dataset directory or manifest."""
    counter = SkipCounter()
    try:
        index = read_manifest(dataset, counter=counter, limit=n, split=split)
    except DataError:
        index = read_manifest(dataset, counter=counter, limit=n, split="train")
    samples = []
    for i in range(len(index)):
        try:
            with open(index.path(i), "rb") as handle:
                samples.append((handle.read(), index.caption(i)))
        except OSError:
            continue
    if not samples:
        raise DataError(dataset, "no readable image in the dataset to build load payloads from")
    return samples


def build_payloads(endpoint: str = "match", n: int = 64, captions_per_request: int = 1,
                   dataset: str | None = None, seed: int = 0, form: str = "raw") -> list[Payload]:
    """``n`` distinct requests for ``endpoint``; images and captions from ``dataset`` when given.
    ``form="json"`` sends match and embed-image requests as ``{"image_b64": ..., "captions": [...]}``
    (the form servers that only read JSON, such as LitServe's, take)."""
    if endpoint not in ENDPOINTS:
        raise DataError("endpoint", f"must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
    if form not in FORMATS:
        raise DataError("payload_format", f"must be one of {', '.join(FORMATS)}, got {form!r}")
    rng = random.Random(seed)
    if dataset:
        samples = dataset_samples(dataset, n)
    else:
        samples = [(generated_jpeg(rng), random_caption(rng)) for _ in range(min(n, 32))]
    captions = [c for _, c in samples]
    payloads = []
    for k in range(n):
        image, caption = samples[k % len(samples)]
        # the true caption plus distractors from other samples: what a retrieval re-ranker sends
        chosen = [caption] + [rng.choice(captions) for _ in range(captions_per_request - 1)]
        if endpoint in ("match", "embed_image") and form == "json":
            body = {"image_b64": base64.b64encode(image).decode(), "captions": chosen if endpoint == "match" else []}
            path = "/v1/match" if endpoint == "match" else "/v1/embed/image"
            payloads.append(Payload(path, dumps(body).encode(), "application/json"))
        elif endpoint == "match":
            payloads.append(Payload("/v1/match?" + urlencode([("caption", c) for c in chosen]), image, "image/jpeg"))
        elif endpoint == "embed_image":
            payloads.append(Payload("/v1/embed/image", image, "image/jpeg"))
        else:
            payloads.append(Payload("/v1/embed/text", dumps({"texts": chosen}).encode(), "application/json"))
    return payloads
