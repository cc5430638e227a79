"""Skip accounting: every sample that is read is either used or skipped for a named reason.

The invariant ``used + skipped == read`` holds for every counter, so a report can always say
where each sample went; nothing is dropped silently.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mmscale.errors import DataError

MAX_EXAMPLES = 100  # bad samples kept per counter (counts are exact; examples are for humans)


class SkipReason(str, enum.Enum):
    """The closed set of reasons a sample is skipped."""

    missing_file = "missing_file"  # the image path does not exist
    not_a_file = "not_a_file"  # the path is a directory or a special file
    empty_file = "empty_file"  # zero bytes
    corrupt_image = "corrupt_image"  # an image format we know, but the data cannot be decoded
    truncated_image = "truncated_image"  # the stream ends before the image does
    not_an_image = "not_an_image"  # no image format recognises the bytes
    too_many_pixels = "too_many_pixels"  # width*height over the limit (decompression bomb)
    empty_caption = "empty_caption"  # caption missing its text, or only whitespace
    malformed_line = "malformed_line"  # a manifest line/row that does not parse
    missing_field = "missing_field"  # a manifest entry without its image or caption field
    bad_text = "bad_text"  # a caption or image path that is not text: invalid UTF-8, a lone surrogate, NUL in a path
    unreadable_file = "unreadable_file"  # permission or I/O error while reading the bytes
    bad_shard = "bad_shard"  # a tar shard that cannot be read to its end


@dataclass(frozen=True)
class BadSample:
    """Where a skipped sample came from, and why; ``line`` is 1-based when known.

    ``path`` is the file at fault: the manifest for a bad line, the image for a bad image. For an
    image, ``listed_in`` is the manifest that named it and ``line`` is that manifest's line."""

    reason: str
    path: str
    line: int | None = None
    detail: str = ""
    listed_in: str = ""

    def where(self) -> str:
        """``file:line``, or ``image (listed at manifest:line)`` for an image named by a manifest."""
        if self.listed_in:
            return f"{self.path} (listed at {self.listed_in}" + (f":{self.line})" if self.line is not None else ")")
        return self.path + (f":{self.line}" if self.line is not None else "")

    def as_dict(self) -> dict:
        return {"reason": self.reason, "path": self.path, "line": self.line, "detail": self.detail,
                "listed_in": self.listed_in}

    def to_error(self) -> DataError:
        """The error ``--strict`` raises for this sample: the manifest line that named an image."""
        if self.listed_in:
            detail = f"image {self.path}" + (f": {self.detail}" if self.detail else "")
            return DataError(self.listed_in, f"{self.reason} ({detail})", line=self.line)
        reason = self.reason + (f" ({self.detail})" if self.detail else "")
        return DataError(self.path, reason, line=self.line)


@dataclass
class SkipCounter:
    """Counts of samples read, used and skipped (by reason), plus the first few bad samples."""

    used: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    examples: list[BadSample] = field(default_factory=list)
    max_examples: int | None = MAX_EXAMPLES  # None keeps every bad sample (``check`` does)

    @property
    def skipped(self) -> int:
        return sum(self.by_reason.values())

    @property
    def read(self) -> int:
        return self.used + self.skipped

    def add_used(self, n: int = 1) -> None:
        self.used += n

    def add(self, reason: SkipReason | str, where: str | BadSample = "", line: int | None = None,
            detail: str = "") -> BadSample:
        """Count one skipped sample; ``where`` is its file (or a ready ``BadSample``)."""
        bad = where if isinstance(where, BadSample) else BadSample(
            SkipReason(reason).value, str(where), line, detail)
        self.by_reason[bad.reason] = self.by_reason.get(bad.reason, 0) + 1
        if self.max_examples is None or len(self.examples) < self.max_examples:
            self.examples.append(bad)
        return bad

    def merge(self, other: "SkipCounter") -> "SkipCounter":
        """Add ``other``'s counts into this counter (in place) and return it."""
        self.used += other.used
        for reason, n in other.by_reason.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n
        room = len(other.examples) if self.max_examples is None else self.max_examples - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])
        return self

    def as_dict(self) -> dict:
        """``{"read", "used", "skipped", "by_reason"}``: the shape ``mmscale data check --json`` prints."""
        return {"read": self.read, "used": self.used, "skipped": self.skipped,
                "by_reason": dict(sorted(self.by_reason.items()))}
