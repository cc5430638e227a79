"""``ManifestIndex``: paths and captions of every sample in a few flat numpy buffers.

A list of per-row Python objects (dicts, str) is copied page by page into every forked DataLoader
worker as soon as the worker touches it, because reading a Python object writes its reference
count (copy-on-read). Ten million rows as dicts take ~4 GB per process; here they are a handful of
arrays (utf-8 bytes + int64 offsets) that no worker ever writes to, so forked workers keep sharing
the parent's pages. ``mmscale bench index-memory`` measures both layouts.
"""

from __future__ import annotations

import os
from array import array

import numpy as np


class ManifestIndex:
    """Columnar, read-only table of (image path, caption, source file, source line)."""

    def __init__(self, path_bytes: np.ndarray, path_offsets: np.ndarray, caption_bytes: np.ndarray,
                 caption_offsets: np.ndarray, file_ids: np.ndarray, lines: np.ndarray,
                 files: list[str], image_root: str = ""):
        self.path_bytes, self.path_offsets = path_bytes, path_offsets  # uint8 [P], int64 [N+1]
        self.caption_bytes, self.caption_offsets = caption_bytes, caption_offsets  # uint8 [C], int64 [N+1]
        self.file_ids, self.lines = file_ids, lines  # int32 [N], int64 [N] (1-based line/row/annotation)
        self.files = files  # manifest file names, indexed by file_ids (a few entries)
        self.image_root = image_root  # relative image paths are joined to this

    def __len__(self) -> int:
        return len(self.path_offsets) - 1

    def _check(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range for an index of {n} rows")
        return i

    def raw_path(self, i: int) -> str:
        """The image path as written in the manifest."""
        i = self._check(i)
        return self.path_bytes[self.path_offsets[i]:self.path_offsets[i + 1]].tobytes().decode("utf-8")

    def path(self, i: int) -> str:
        """The image path, joined to ``image_root`` when relative."""
        raw = self.raw_path(i)
        return raw if os.path.isabs(raw) or not self.image_root else os.path.join(self.image_root, raw)

    def caption(self, i: int) -> str:
        i = self._check(i)
        return self.caption_bytes[self.caption_offsets[i]:self.caption_offsets[i + 1]].tobytes().decode("utf-8")

    def source(self, i: int) -> tuple[str, int]:
        """(manifest file, 1-based line) the row came from, for error messages."""
        i = self._check(i)
        return self.files[int(self.file_ids[i])], int(self.lines[i])

    def head(self, n: int) -> "ManifestIndex":
        """The first ``n`` rows (views, no copy)."""
        n = min(n, len(self))
        return ManifestIndex(self.path_bytes[: self.path_offsets[n]], self.path_offsets[: n + 1],
                             self.caption_bytes[: self.caption_offsets[n]], self.caption_offsets[: n + 1],
                             self.file_ids[:n], self.lines[:n], self.files, self.image_root)

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers (what a forked worker shares with its parent)."""
        return sum(a.nbytes for a in (self.path_bytes, self.path_offsets, self.caption_bytes,
                                      self.caption_offsets, self.file_ids, self.lines))


class IndexBuilder:
    """Appends rows into growable byte/offset buffers; ``build()`` freezes them into numpy."""

    def __init__(self, image_root: str = ""):
        self.image_root = image_root
        self._paths, self._captions = bytearray(), bytearray()
        self._path_ends, self._caption_ends = array("q"), array("q")
        self._file_ids, self._lines = array("i"), array("q")
        self._files: list[str] = []
        self._file_id = -1

    def start_file(self, name: str) -> None:
        """Rows added from now on come from manifest ``name``."""
        self._files.append(str(name))
        self._file_id = len(self._files) - 1

    def add(self, path: str, caption: str, line: int) -> None:
        if self._file_id < 0:
            self.start_file("<memory>")
        self._paths += path.encode("utf-8")
        self._captions += caption.encode("utf-8")
        self._path_ends.append(len(self._paths))
        self._caption_ends.append(len(self._captions))
        self._file_ids.append(self._file_id)
        self._lines.append(line)

    def __len__(self) -> int:
        return len(self._lines)

    def build(self) -> ManifestIndex:
        def offsets(ends: array) -> np.ndarray:
            out = np.zeros(len(ends) + 1, dtype=np.int64)
            out[1:] = np.frombuffer(ends, dtype=np.int64) if len(ends) else []
            return out

        return ManifestIndex(
            np.frombuffer(self._paths, dtype=np.uint8).copy(), offsets(self._path_ends),
            np.frombuffer(self._captions, dtype=np.uint8).copy(), offsets(self._caption_ends),
            np.frombuffer(self._file_ids, dtype=np.int32).copy() if len(self._file_ids) else np.zeros(0, np.int32),
            np.frombuffer(self._lines, dtype=np.int64).copy() if len(self._lines) else np.zeros(0, np.int64),
            list(self._files) or ["<memory>"], self.image_root)
