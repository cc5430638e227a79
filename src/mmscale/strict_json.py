"""Every JSON the tool writes, as a strict parser reads it: no NaN, no Infinity.

Python's ``json`` writes ``float('nan')`` as the bare word ``NaN``, which JSON does not have: jq,
a browser's ``JSON.parse`` and ``json.loads(text, parse_constant=...)`` reject the whole file.
Here a non-finite float becomes ``null`` (the field's docstring, or a warning where the figure
matters, says what null means there), and ``allow_nan=False`` stays on, so anything that would
still produce NaN raises instead of writing a broken file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


def to_plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses to dicts, tuples to lists, non-finite floats to ``None``,
    paths and anything else unknown to strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return to_plain(value.item())
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def dumps(value: Any, **kwargs) -> str:
    """``json.dumps`` that never writes NaN or Infinity (keyword arguments as for ``json.dumps``).

    The common case (nothing non-finite) costs one ``json.dumps``: the server answers through it.
    """
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError as exc:
        if "Out of range float" not in str(exc):  # e.g. a circular reference: not ours to mend
            raise
    return json.dumps(to_plain(value), allow_nan=False, **kwargs)


def write_json(path: str | Path, value: Any, **kwargs) -> Path:
    """Write ``value`` to ``path`` as strict JSON (see ``dumps``); returns the path."""
    path = Path(path)
    path.write_text(dumps(value, **kwargs))
    return path
