"""Manifest readers: JSONL, CSV and COCO captions -> one ``ManifestIndex``.

WebDataset shards are streamed instead of indexed (see ``wds.py``); ``resolve_source`` decides
which of the two a path is. Problems with single rows (bad JSON, missing fields, empty captions,
text that is not valid UTF-8) are counted with their file and line; problems with a whole file
(not found, no header) raise ``DataError``. A leading byte-order mark is dropped.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mmscale.data.index import IndexBuilder, ManifestIndex
from mmscale.data.skips import BadSample, SkipCounter, SkipReason
from mmscale.data.text import ENCODING, ERRORS, read_lines, text_problem
from mmscale.errors import DataError

CAPTION_FIELDS = ("caption", "text")  # accepted names of the caption field, first wins
JSON_BLANK = " \t\r\n"  # JSON's whitespace: a line of only these is no sample


@dataclass
class Source:
    """What a data path resolves to: a manifest file or a list of tar shards."""

    fmt: str  # jsonl | csv | coco | wds
    files: list[str]


def resolve_source(path: str | os.PathLike, fmt: str = "auto", split: str = "train") -> Source:
    """Directory -> its ``{split}.jsonl``/``.csv``/``.json`` or ``{split}-*.tar``; file -> itself."""
    p = Path(path)
    if p.is_dir():
        for ext, kind in ((".jsonl", "jsonl"), (".csv", "csv"), (".json", "coco")):
            if (p / f"{split}{ext}").is_file() and fmt in ("auto", kind):
                return Source(kind, [str(p / f"{split}{ext}")])
        shards = sorted(glob.glob(str(p / f"{split}-*.tar")))
        if shards and fmt in ("auto", "wds"):
            return Source("wds", shards)
        raise DataError(str(p), f"directory holds no '{split}' manifest ({split}.jsonl, {split}.csv, "
                                f"{split}.json) or shards ({split}-*.tar)")
    if any(ch in str(p) for ch in "*?[{"):
        shards = sorted(glob.glob(str(p)))
        if not shards:
            raise DataError(str(p), "no files match this pattern")
        return Source("wds", shards)
    if not p.exists():
        raise DataError(str(p), "manifest not found")
    if not p.is_file():
        raise DataError(str(p), "not a regular file")
    if fmt != "auto":
        return Source(fmt, [str(p)])
    suffix = p.suffix.lower()
    kinds = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".json": "coco", ".tar": "wds"}
    if suffix not in kinds:
        raise DataError(str(p), f"cannot tell the format from '{suffix}': pass --format jsonl|csv|coco|wds")
    return Source(kinds[suffix], [str(p)])


class _Rows:
    """Collects good rows and counts bad ones (or raises on the first under ``strict``)."""

    def __init__(self, builder: IndexBuilder, counter: SkipCounter, strict: bool, limit: int | None):
        self.builder, self.counter, self.strict, self.limit = builder, counter, strict, limit

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.builder) >= self.limit

    def skip(self, reason: SkipReason, path: str, line: int, detail: str = "") -> None:
        bad = BadSample(reason.value, path, line, detail)
        if self.strict:
            raise bad.to_error()
        self.counter.add(reason, bad)

    def add(self, image, caption, path: str, line: int, field_names=("image", "caption")) -> None:
        if image is None or image == "":
            return self.skip(SkipReason.missing_field, path, line, f"no '{field_names[0]}'")
        if caption is None:
            return self.skip(SkipReason.missing_field, path, line, f"no '{field_names[1]}'")
        if not isinstance(image, str) or not isinstance(caption, str):
            return self.skip(SkipReason.malformed_line, path, line, "image and caption must be strings")
        problem = text_problem(image, f"'{field_names[0]}'", path=True) or text_problem(caption, f"'{field_names[1]}'")
        if problem:
            return self.skip(SkipReason.bad_text, path, line, problem)
        if not caption.strip():
            return self.skip(SkipReason.empty_caption, path, line)
        self.builder.add(image, caption, line)


def _read_jsonl(path: str, rows: _Rows) -> None:
    for line_no, line in enumerate(read_lines(path), start=1):  # lines end at \n only
        if rows.full:
            return
        if not line.strip(JSON_BLANK):
            continue  # blank lines separate nothing; not a sample
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = exc.msg.removesuffix(" at")  # "Invalid control character at" + where
            rows.skip(SkipReason.malformed_line, path, line_no, f"not JSON ({reason} at column {exc.colno})")
            continue
        except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits, deep nesting
            rows.skip(SkipReason.malformed_line, path, line_no, f"not usable JSON ({type(exc).__name__})")
            continue
        if not isinstance(obj, dict):
            rows.skip(SkipReason.malformed_line, path, line_no, f"expected an object, got {type(obj).__name__}")
            continue
        caption_key = next((k for k in CAPTION_FIELDS if k in obj), "caption")
        rows.add(obj.get("image"), obj.get(caption_key), path, line_no)


def _read_csv(path: str, rows: _Rows) -> None:
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, "r", encoding=ENCODING, errors=ERRORS, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise DataError(path, f"CSV header does not parse ({exc})", line=1) from None
        names = [h.strip().lower() for h in header or []]
        caption_key = next((k for k in CAPTION_FIELDS if k in names), None)
        if "image" not in names or caption_key is None:
            raise DataError(path, f"CSV header must name the columns 'image' and 'caption' (got {header})", line=1)
        i_image, i_caption = names.index("image"), names.index(caption_key)
        while not rows.full:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a field over csv's size limit; the reader goes on after it
                rows.skip(SkipReason.malformed_line, path, reader.line_num, f"not CSV ({exc})")
                continue
            line_no = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != len(names):
                rows.skip(SkipReason.malformed_line, path, line_no, f"{len(fields)} fields, header has {len(names)}")
                continue
            rows.add(fields[i_image].strip() or None, fields[i_caption], path, line_no)


def _read_coco(path: str, rows: _Rows) -> None:
    try:
        with open(path, "r", encoding=ENCODING, errors=ERRORS) as f:
            data = json.load(f)
    except (ValueError, RecursionError) as exc:  # bad JSON, an integer of > 4300 digits, deep nesting
        raise DataError(path, f"not a COCO captions JSON file ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError(path, "COCO captions JSON needs top-level lists 'images' and 'annotations'")
    files = {}
    for image in data["images"]:
        if isinstance(image, dict) and _is_id(image.get("id")) and isinstance(image.get("file_name"), str):
            files[image["id"]] = image["file_name"]
    # "line" is the 1-based position of the annotation in the 'annotations' list.
    for number, ann in enumerate(data["annotations"], start=1):
        if rows.full:
            return
        if not isinstance(ann, dict):
            rows.skip(SkipReason.malformed_line, path, number, "annotation is not an object")
            continue
        if "image_id" not in ann:
            rows.skip(SkipReason.missing_field, path, number, "no 'image_id'")
            continue
        if not _is_id(ann["image_id"]) or ann["image_id"] not in files:
            shown = ascii(ann["image_id"])[:60]  # ascii: a lone surrogate in a message would not print
            rows.skip(SkipReason.missing_field, path, number, f"image_id {shown} not in 'images'")
            continue
        rows.add(files[ann["image_id"]], ann.get("caption"), path, number, ("file_name", "caption"))


def _is_id(value) -> bool:
    """COCO ids are numbers or strings; anything else (a list, an object) cannot key the images."""
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "coco": _read_coco}


def read_manifest(path: str | os.PathLike, fmt: str | None = None, image_root: str | None = None,
                  counter: SkipCounter | None = None, strict: bool = False,
                  limit: int | None = None, split: str = "train") -> ManifestIndex:
    """Read a JSONL/CSV/COCO manifest (or a directory's ``{split}`` manifest) into an index.

    Bad rows are counted in ``counter`` (with file and line) or, under ``strict``, raise
    ``DataError``. Image paths stay as written; relative ones resolve against ``image_root``,
    by default the manifest's directory. ``limit`` stops after that many good rows.
    """
    source = resolve_source(path, fmt or "auto", split)
    if source.fmt == "wds":
        raise DataError(str(path), "WebDataset shards are streamed, not indexed: use open_dataset()")
    if source.fmt not in READERS:
        raise DataError(str(path), f"unknown manifest format '{source.fmt}'")
    manifest = source.files[0]
    root = image_root if image_root is not None else os.path.dirname(os.path.abspath(manifest))
    builder = IndexBuilder(image_root=str(root))
    builder.start_file(manifest)
    rows = _Rows(builder, counter if counter is not None else SkipCounter(), strict, limit)
    READERS[source.fmt](manifest, rows)
    return builder.build()
