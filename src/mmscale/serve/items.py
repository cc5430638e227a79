"""What a request becomes once parsed, what the model returns for it, and the 4xx it may earn.

The predict path has three steps, each testable alone (litgpt's split): ``codec.decode_request``
turns HTTP bytes into an item below, ``Predictor.predict`` runs a batch of items, and
``codec.encode_response`` turns one output into JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("match", "embed_image", "embed_text")


class RequestError(Exception):
    """A request the server refuses; ``limit`` names the limit when one was exceeded."""

    def __init__(self, status: int, code: str, message: str, limit: str | None = None,
                 headers: dict[str, str] | None = None):
        self.status, self.code, self.message, self.limit = status, code, message, limit
        self.headers = headers or {}
        super().__init__(message)

    def as_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.limit:
            body["limit"] = self.limit
        return {"error": body}


@dataclass
class Item:
    """One request's input. ``image_bytes`` is the encoded file (decoded in the batch)."""

    task: str
    image_bytes: bytes | None = None
    captions: list[str] = field(default_factory=list)
    token_ids: list[list[int]] | None = None
    """The captions already tokenized ([CLS] ... [SEP], truncated, unpadded), one list per caption:
    set by a front-end process (``--frontends N``) so that the model process does no tokenizing;
    None means the predictor tokenizes ``captions`` itself."""


@dataclass
class Output:
    """One request's result; which fields are set depends on the task."""

    itm_prob: list[float] | None = None
    """P(caption matches image) from the ITM head, one per caption."""
    itc_similarity: list[float] | None = None
    """Cosine similarity of the normalized image and caption embeddings, one per caption."""
    embeddings: list[list[float]] | None = None
    """Normalized embeddings: one for an image, one per text."""
