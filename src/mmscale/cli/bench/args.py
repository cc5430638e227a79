"""The argparse ``type=`` parsers the ``mmscale bench`` commands share, so that a bad flag value is a
usage error naming the flag (``argument --sizes: ...``), never a traceback."""

from __future__ import annotations

import argparse
import math


def at_least(minimum: int):
    """``type=`` for an integer flag that must be >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def number_list(kind=int, minimum: float = 1, exclusive: bool = False, allow_empty: bool = False):
    """``type=`` for a comma-separated list of numbers, each >= ``minimum`` (> with ``exclusive``).

    ``allow_empty`` lets ``''`` mean "none" (an empty list); otherwise at least one value is needed.
    """
    noun = "integers" if kind is int else "numbers"
    bound = f"{'>' if exclusive else '>='} {minimum:g}"

    def parse(text: str) -> list:
        parts = [x.strip() for x in str(text).split(",") if x.strip()]
        if not parts:
            if allow_empty:
                return []
            raise argparse.ArgumentTypeError(f"expected comma-separated {noun} {bound}, got {text!r}")
        values = []
        for part in parts:
            try:
                value = kind(part)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected comma-separated {noun} {bound}, got {_quote(part, text)}") from None
            if not math.isfinite(value) or (value <= minimum if exclusive else value < minimum):
                raise argparse.ArgumentTypeError(f"every value must be {bound}, got {_quote(part, text)}")
            values.append(value)
        return values

    parse.__name__ = f"list of {noun}"
    return parse


def _quote(part: str, text: str) -> str:
    return repr(part) if part == str(text).strip() else f"{part!r} in {text!r}"


def name_list(known, what: str, plural: str = ""):
    """``type=`` for a comma-separated list of names, each one of ``known`` (a sequence or a callable
    returning one, so that a heavy import waits until the flag is given)."""
    plural = plural or what + "s"

    def parse(text: str) -> list[str]:
        names = list(known() if callable(known) else known)
        parts = [x.strip() for x in str(text).split(",") if x.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected comma-separated {plural} (known: {', '.join(names)}), "
                                             f"got {text!r}")
        unknown = [p for p in parts if p not in names]
        if unknown:
            listed = ", ".join(repr(u) for u in unknown)
            raise argparse.ArgumentTypeError(f"unknown {plural if len(unknown) > 1 else what} {listed} "
                                             f"(known: {', '.join(names)})")
        return list(dict.fromkeys(parts))  # in the order given, each once

    parse.__name__ = f"list of {plural}"
    return parse
