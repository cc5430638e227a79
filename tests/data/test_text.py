"""``text_problem``: which strings a manifest row may carry into the index and the tokenizer."""

import pytest

from mmscale.data.text import text_problem


@pytest.mark.parametrize("value, path, expected", [
    ("a cat on a mat", False, None),
    ("caf\u00e9 \U0001F600 \u2028", False, None),  # any valid Unicode, line separators included
    ("x\x00y", False, None),  # NUL is text in a caption
    ("x\x00y.jpg", True, "'image' holds a NUL byte at character 2"),
    ("ab\ud800", False, "'image' holds a lone surrogate (U+D800) at character 3"),
    (b"a\xffb".decode("utf-8", "surrogateescape"), False, "'image' holds invalid UTF-8 (byte 0xFF) at character 2"),
])
def test_text_problem_names_what_and_where(value, path, expected):
    assert text_problem(value, "'image'", path=path) == expected
