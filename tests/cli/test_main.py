"""The CLI shell: help, version, and user errors as one line without a traceback."""

from __future__ import annotations

import pytest

from mmscale.cli import build_parser, main, parse
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


def test_overrides_may_follow_flags():
    args = parse(build_parser(), ["train", "--preset", "tiny", "data.path=d", "--no-progress", "train.steps=1",
                                  "--resume", "train.batch_size=8"])
    assert args.overrides == ["data.path=d", "train.steps=1", "train.batch_size=8"]
    assert args.no_progress and args.resume
    assert parse(build_parser(), ["train", "--resume", "--", "train.lr=2"]).overrides == ["train.lr=2"]


def test_verbose_may_follow_the_command():
    assert parse(build_parser(), ["data", "check", "m.jsonl", "-v"]).verbose


def test_config_takes_prefixes_after_flags():
    assert parse(build_parser(), ["config", "--preset", "tiny", "train", "--changed", "model"]).items == ["train", "model"]


def test_an_unknown_flag_is_the_commands_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        parse(build_parser(), ["bench", "data", "--data", "d", "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "mmscale bench data: error: unrecognized arguments: --bogus" in err
    assert err.startswith("usage: mmscale bench data")
