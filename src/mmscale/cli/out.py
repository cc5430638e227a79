"""``--out`` names a run folder in every command; the file a command writes there has a fixed name.

Every benchmark also writes its result rows there in the one schema (``rows.jsonl``, and ``rows.csv``
with ``--csv``); the flags and the writing live here, so that each command adds them the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mmscale.errors import ConfigError
from mmscale.result_rows import CSV_FILE, ROWS_FILE, write_rows

# what a command's parsed arguments hold besides its settings (and the bearer token): left out of its rows' config
NOT_CONFIG = frozenset({"run", "json", "csv", "out", "verbose", "command", "bench", "token"})


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


def folder_file(out: str | Path, name: str) -> Path:
    """``out/name``, where ``--out`` once named the file itself (``report``, ``compare``): a path with
    the file's suffix is refused, naming the folder to pass instead. The writer makes the folder."""
    path = Path(out)
    if not str(out).strip():
        raise ConfigError("--out", "is empty")
    if path.suffix == Path(name).suffix:
        raise ConfigError("--out", f"names a folder now ({name} is written into it): pass --out {path.parent}, "
                                   f"not {out}")
    return path / name


def add_out_arguments(parser, help: str, **kwargs) -> None:
    """``--out`` (``help`` and ``kwargs`` as the command words them) and ``--csv``."""
    parser.add_argument("--out", help=help, **kwargs)
    add_csv_argument(parser)


def add_csv_argument(parser) -> None:
    parser.add_argument("--csv", action="store_true",
                        help=f"also write the result rows as OUT/{CSV_FILE}, one per line with flat columns "
                             f"(OUT/{ROWS_FILE} is always written)")


def run_config(args) -> dict:
    """The command's settings as its rows' config: every parsed argument but the output flags."""
    return {k: v for k, v in vars(args).items() if k not in NOT_CONFIG and not callable(v)}


def check_csv(args) -> None:
    """Where ``--out`` is optional, ``--csv`` without it is an error before anything runs."""
    if getattr(args, "csv", False) and not getattr(args, "out", None):
        raise ConfigError("--csv", "needs --out RUN_DIR: the rows are written into the run folder")


def save_rows(args, out_dir: str | Path, rows: list[dict]) -> list[Path]:
    """Write ``rows`` into the run folder (``--csv``: the CSV too)."""
    return write_rows(out_dir, rows, csv_too=getattr(args, "csv", False))
