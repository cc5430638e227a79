"""Response shapes for the OpenAPI schema. Handlers build plain dicts (no per-request validation
cost); these models only document what the dicts hold."""

from __future__ import annotations

from pydantic import BaseModel


class MatchResponse(BaseModel):
    itm_prob: list[float]
    """P(caption matches the image) from the ITM head, one per caption, in request order."""
    itc_similarity: list[float]
    """Cosine similarity of the image and caption embeddings (-1..1), one per caption."""


class ImageEmbedResponse(BaseModel):
    embedding: list[float]
    dim: int


class TextEmbedRequest(BaseModel):
    texts: list[str]


class TextEmbedResponse(BaseModel):
    embeddings: list[list[float]]
    dim: int


class ErrorDetail(BaseModel):
    code: str
    """bad_request, bad_image, limit_exceeded, unauthorized, unsupported_media_type, overloaded."""
    message: str
    limit: str | None = None
    """The limit that was exceeded: max_body_bytes, max_image_pixels, max_captions, max_caption_chars."""


class ErrorResponse(BaseModel):
    error: ErrorDetail


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {
                "type": "object", "required": ["image_b64"],
                "properties": {"image_b64": {"type": "string", "format": "byte"},
                               "captions": {"type": "array", "items": {"type": "string"}}}}},
        },
    },
}
TEXT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": TextEmbedRequest.model_json_schema()}}}}
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 415, 503)}
