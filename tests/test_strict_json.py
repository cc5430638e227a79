"""The one JSON writer: non-finite floats become null, and what it writes parses strictly."""

import dataclasses
import json
import math

import pytest

from mmscale.strict_json import dumps, to_plain, write_json


def strict_loads(text: str):
    def reject(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=reject)


@dataclasses.dataclass
class Row:
    p99_ms: float
    spread: float


def test_non_finite_floats_become_null_at_any_depth():
    doc = {"rows": [Row(math.nan, math.inf)], "pair": (1.5, -math.inf), "ok": 2, "name": "x", "none": None}
    assert strict_loads(dumps(doc, default=to_plain)) == {
        "rows": [{"p99_ms": None, "spread": None}], "pair": [1.5, None], "ok": 2, "name": "x", "none": None}
    assert json.dumps({"a": math.nan}) == '{"a": NaN}'  # what the standard library writes unasked


def test_numpy_scalars_are_checked_too():
    np = pytest.importorskip("numpy")
    assert strict_loads(dumps({"a": np.float64("nan"), "b": [np.float64(2.5)]})) == {"a": None, "b": [2.5]}


def test_finite_documents_are_written_exactly_as_json_dumps_writes_them():
    doc = {"b": [1, 2.5, "é"], "a": {"c": True}}
    for kwargs in ({}, {"indent": 1}, {"separators": (",", ":")}, {"sort_keys": True}):
        assert dumps(doc, **kwargs) == json.dumps(doc, **kwargs)


def test_write_json_writes_a_strict_file(tmp_path):
    path = write_json(tmp_path / "out.json", {"x": [math.nan, 1.0]}, indent=1)
    assert strict_loads(path.read_text()) == {"x": [None, 1.0]}


def test_other_value_errors_are_not_swallowed():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(loop)
