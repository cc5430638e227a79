"""Is a manifest string usable text? One check shared by every reader and the loader.

Files are read as UTF-8 with ``surrogateescape``: an invalid byte becomes a lone surrogate
(U+DC80-U+DCFF), and a JSON ``"\\ud800"`` escape is one too, so one test finds both (a JSON escape
in U+DC80-U+DCFF is reported as the invalid byte it stands for).
"""

from __future__ import annotations

import codecs

ENCODING = "utf-8-sig"  # a leading byte-order mark is dropped, never glued to the first row
ERRORS = "surrogateescape"  # invalid bytes survive decoding as lone surrogates, found by ``text_problem``


def text_problem(value: str, name: str, path: bool = False) -> str | None:
    """Why ``value`` (a caption or, with ``path``, an image path) cannot be used; None when it can."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        what = f"invalid UTF-8 (byte 0x{code - 0xDC00:02X})" if 0xDC80 <= code <= 0xDCFF else \
            f"a lone surrogate (U+{code:04X})"
        return f"{name} holds {what} at character {exc.start + 1}"
    if path and "\x00" in value:
        return f"{name} holds a NUL byte at character {value.index(chr(0)) + 1}"
    return None


def read_lines(path: str):
    """The file's lines (split at newline bytes only), decoded as UTF-8 with ``ERRORS`` and a leading
    byte-order mark dropped. Not ``ENCODING``: its decoder drops a lone leading 0xEF (or 0xEF 0xBB)
    that ends the file, so a line would be lost without a count."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            yield raw.decode("utf-8", ERRORS)
