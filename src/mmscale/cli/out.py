"""``--out`` names a run folder in every command; the file a command writes there has a fixed name."""

from __future__ import annotations

import sys
from pathlib import Path


def out_file(out: str, name: str, old_suffix: str) -> Path:
    """``out/name`` (the folder made as needed). A path ending in ``old_suffix`` is the old form, a
    file named directly: still written, with a line saying what to pass instead."""
    path = Path(out)
    if path.suffix == old_suffix:
        print(f"mmscale: --out {out} names a file; --out now names a run folder (this run would pass "
              f"--out {path.parent}, which writes {path.parent / name}). Writing {path} this time.", file=sys.stderr)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    path.mkdir(parents=True, exist_ok=True)
    return path / name
