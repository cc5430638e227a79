"""HTTP bytes -> ``Item`` and ``Output`` -> JSON, with every limit checked before model work.

Payloads (see docs/serving.md): ``/v1/match`` and ``/v1/embed/image`` take the image file as the
raw body (``Content-Type: image/jpeg`` / ``image/png`` / ``application/octet-stream``) with
captions as repeated ``caption`` query parameters; or JSON ``{"image_b64": ..., "captions": [...]}``.
``/v1/embed/text`` takes JSON ``{"texts": [...]}``. Raw bytes avoid base64's 33% and its decode.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import warnings

from PIL import Image

from mmscale.serve.config import MAX_CAPTION_CHARS, ServeConfig
from mmscale.serve.items import Item, Output, RequestError

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "application/octet-stream")
# A caption must hold a character outside this class: Python's whitespace and JSON Schema's (ECMA-262)
# together, spelled out, so that the server and the schema's ``pattern`` agree on every character.
BLANKS = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = f"[^{BLANKS}]"


def check_image_header(data: bytes, max_image_pixels: int) -> tuple[int, int]:
    """Width and height from the header only (no decode); 400 for non-images, 413 for too big."""
    if not data:
        raise RequestError(400, "bad_image", "empty image body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RequestError(413, "limit_exceeded", "image has too many pixels",
                           limit="max_image_pixels") from None
    except Exception as exc:  # PIL raises many types for garbage bytes
        raise RequestError(400, "bad_image", f"not a decodable image ({type(exc).__name__})") from None
    if width * height > max_image_pixels:
        raise RequestError(413, "limit_exceeded",
                           f"image is {width}x{height} = {width * height} pixels, more than "
                           f"max_image_pixels={max_image_pixels}", limit="max_image_pixels")
    return width, height


def check_captions(captions: list, cfg: ServeConfig, required: bool = True, field: str = "captions") -> list[str]:
    """``field``: the name the client sent them under (``captions``, or ``texts`` on /v1/embed/text)."""
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise RequestError(400, "bad_request", f"'{field}' must be a list of strings")
    if required and not captions:
        raise RequestError(400, "bad_request", f"at least one entry in '{field}' is required")
    if len(captions) > cfg.max_captions:
        raise RequestError(400, "limit_exceeded", f"{len(captions)} {field}, more than "
                           f"max_captions={cfg.max_captions}", limit="max_captions")
    for i, caption in enumerate(captions):
        if len(caption) > MAX_CAPTION_CHARS:
            raise RequestError(400, "limit_exceeded", f"{field}[{i}] has {len(caption)} characters, "
                               f"more than max_caption_chars={MAX_CAPTION_CHARS}", limit="max_caption_chars")
        if not re.search(NOT_BLANK, caption):
            raise RequestError(400, "bad_request", f"{field}[{i}] is empty")
        if not caption.isascii():
            try:
                caption.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no tokenizer takes it
                raise RequestError(400, "bad_request", f"{field}[{i}] is not valid Unicode "
                                                       "(it holds a lone surrogate)") from None
    return captions


def parse_json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except RecursionError:
        raise RequestError(400, "bad_request", "body is JSON nested too deeply") from None
    except ValueError:  # also UnicodeDecodeError, and integers too long to convert
        raise RequestError(400, "bad_request", "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError(400, "bad_request", "JSON body must be an object")
    return data


def image_and_captions(body: bytes, content_type: str, query_captions: list[str]) -> tuple[bytes, list]:
    """Split a match/embed-image body into image bytes and captions, for either payload form."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        data = parse_json(body)
        encoded = data.get("image_b64")
        if not isinstance(encoded, str):
            raise RequestError(400, "bad_request", "JSON body needs 'image_b64' (base64 string)")
        try:
            image = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "bad_image", "'image_b64' is not valid base64") from None
        return image, data.get("captions", [])
    if kind and kind not in IMAGE_TYPES:
        raise RequestError(415, "unsupported_media_type",
                           f"Content-Type {kind!r}: send the image file as the body "
                           f"({', '.join(IMAGE_TYPES)}) with captions in the query, e.g. curl "
                           f"--data-binary @cat.jpg -H 'Content-Type: image/jpeg' '.../v1/match?caption=a+cat', "
                           f"or JSON with image_b64 (multipart forms are not read)")
    return body, list(query_captions)


def decode_request(task: str, body: bytes, content_type: str, query_captions: list[str],
                   cfg: ServeConfig) -> Item:
    """Validate one HTTP request into an ``Item``; raises ``RequestError`` (4xx) on bad input."""
    if len(body) > cfg.max_body_bytes:
        raise RequestError(413, "limit_exceeded", f"body is {len(body)} bytes, more than "
                           f"max_body_bytes={cfg.max_body_bytes}", limit="max_body_bytes")
    if task == "embed_text":
        kind = content_type.split(";")[0].strip().lower()
        if kind and kind != "application/json":
            raise RequestError(415, "unsupported_media_type",
                               f"Content-Type {kind!r}: send JSON {{\"texts\": [...]}} as application/json")
        data = parse_json(body)
        if "texts" not in data:
            keys = ", ".join(repr(k) for k in list(data)[:5]) or "none"
            raise RequestError(400, "bad_request", f"JSON body needs 'texts' (a list of strings), got keys: {keys}")
        return Item(task, captions=check_captions(data["texts"], cfg, field="texts"))
    image, captions = image_and_captions(body, content_type, query_captions)
    check_image_header(image, cfg.max_image_pixels)
    field = "captions" if content_type.split(";")[0].strip().lower() == "application/json" else "caption"
    captions = check_captions(captions, cfg, required=(task == "match"), field=field)
    return Item(task, image_bytes=image, captions=captions if task == "match" else [])


def rounded(values, digits: int = 6) -> list[float]:
    out = [round(float(v), digits) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError("model produced a non-finite value")
    return out


def encode_response(task: str, output: Output) -> dict:
    """The JSON body for one result."""
    if task == "match":
        return {"itm_prob": rounded(output.itm_prob), "itc_similarity": rounded(output.itc_similarity)}
    if task == "embed_image":
        (embedding,) = output.embeddings
        return {"embedding": rounded(embedding), "dim": len(embedding)}
    return {"embeddings": [rounded(e) for e in output.embeddings],
            "dim": len(output.embeddings[0]) if output.embeddings else 0}
