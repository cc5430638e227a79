"""Response shapes for the OpenAPI schema. Handlers build plain dicts (no per-request validation
cost); these models only document what the dicts hold."""

from __future__ import annotations

from pydantic import BaseModel

from mmscale.serve.codec import IMAGE_TYPES, NOT_BLANK
from mmscale.serve.config import MAX_CAPTION_CHARS


class MatchResponse(BaseModel):
    itm_prob: list[float]
    """P(caption matches the image) from the ITM head, one per caption, in request order."""
    itc_similarity: list[float]
    """Cosine similarity of the image and caption embeddings (-1..1), one per caption."""


class ImageEmbedResponse(BaseModel):
    embedding: list[float]
    dim: int


class TextEmbedResponse(BaseModel):
    embeddings: list[list[float]]
    dim: int


class ErrorDetail(BaseModel):
    code: str
    """bad_request, bad_image, limit_exceeded, unauthorized, request_timeout, unsupported_media_type,
    overloaded, unavailable, not_found, method_not_allowed."""
    message: str
    limit: str | None = None
    """The limit that was exceeded: max_body_bytes, max_image_pixels, max_captions, max_caption_chars."""


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_STATUSES = (400, 401, 408, 413, 415, 503)
ERRORS = {code: {"model": ErrorResponse} for code in ERROR_STATUSES}
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}  # registered by the routes that use ERRORS


def caption_schema() -> dict:
    """One caption or text: not empty, not only whitespace, at most ``MAX_CAPTION_CHARS``."""
    return {"type": "string", "minLength": 1, "maxLength": MAX_CAPTION_CHARS, "pattern": NOT_BLANK}


def captions_schema(max_captions: int, min_items: int = 1) -> dict:
    return {"type": "array", "items": caption_schema(), "minItems": min_items, "maxItems": max_captions}


def image_body(max_captions: int, captions_required: bool) -> dict:
    """``openapi_extra`` of an image endpoint: the raw file in any accepted type, or JSON with base64;
    on ``/v1/match`` the captions of the raw form come as repeated ``caption`` query parameters."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    json_body = {"type": "object", "required": ["image_b64"],
                 "properties": {"image_b64": {"type": "string", "format": "byte"},
                                "captions": captions_schema(max_captions, 1 if captions_required else 0)}}
    if captions_required:
        json_body["required"].append("captions")
    extra = {"requestBody": {"required": True, "content": {
        **{kind: binary for kind in IMAGE_TYPES}, "application/json": {"schema": json_body}}}}
    if captions_required:
        extra["parameters"] = [{"name": "caption", "in": "query", "required": True, "style": "form",
                                "explode": True, "schema": captions_schema(max_captions),
                                "description": "a caption (repeat for several) for the image file in the "
                                               "body; with a JSON body the captions are its own"}]
    return extra


def text_body(max_captions: int) -> dict:
    """``openapi_extra`` of ``/v1/embed/text``: JSON ``{"texts": [...]}``."""
    schema = {"type": "object", "required": ["texts"], "properties": {"texts": captions_schema(max_captions)}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class Health(BaseModel):
    status: str
    pid: int


class Readiness(BaseModel):
    status: str
    server: str | None = None
    queue_depth: int | None = None
