"""One exception type per domain, each carrying what a user needs to fix the problem.

The CLI turns any ``MmscaleError`` into one clear line on stderr and a non-zero exit; a
traceback is only ever shown for a bug in mmscale itself.
"""

from __future__ import annotations


class MmscaleError(Exception):
    """Base of every error caused by the user's input, config or environment."""

    exit_code = 2


class DataError(MmscaleError):
    """A bad sample or manifest entry, raised under ``--strict`` (otherwise it is a counted skip)."""

    def __init__(self, path: str, reason: str, line: int | None = None, field: str | None = None):
        self.path, self.reason, self.line, self.field = str(path), reason, line, field
        where = self.path + (f":{line}" if line is not None else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {reason}")


class ConfigError(MmscaleError):
    """A config key that is unknown, of the wrong type or impossible; names the field.

    A ``field`` that starts with ``-`` is a command-line flag (``--n``), and the message names it
    the way argparse does (``argument --n: ...``) rather than as a config field.
    """

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason
        where = f"argument {field}" if field.startswith("-") else f"config field '{field}'"
        super().__init__(f"{where}: {reason}")


class CheckpointError(MmscaleError):
    """A checkpoint that is missing, truncated or from an incompatible config."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"checkpoint {path}: {reason}")
