"""The CLI shell: help, version, and user errors as one line without a traceback."""

from __future__ import annotations

import pytest

from mmscale.cli import build_parser, main
from mmscale.errors import DataError


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "bench" in out and "mmscale validate --preset cpu" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 1
    assert "usage: mmscale" in capsys.readouterr().out


def test_user_error_is_one_line(capsys, monkeypatch):
    parser = build_parser()

    def boom(args):
        raise DataError("data/train.jsonl", "missing field", line=7, field="caption")

    monkeypatch.setattr("mmscale.cli.build_parser", lambda: parser)
    sub = parser._subparsers._group_actions[0]
    sub.add_parser("boom").set_defaults(run=boom)
    assert main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "mmscale: error: data/train.jsonl:7: field 'caption' missing field"
    assert "Traceback" not in err
