"""``mmscale data synth|check`` through main([...]), as a user would type them."""

import json

import pytest

from mmscale.cli import main
from tests.data.conftest import BAD_CLASSES, jpeg_bytes, mixed_dataset  # noqa: F401  (fixture)


def test_synth_then_check_json(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "synth", "--n", "6", "--out", str(out), "--workers", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_train"] == 5 and result["img_per_s"] > 0
    assert main(["data", "check", str(out / "train.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"read": 5, "used": 5, "skipped": 0, "by_reason": {}}


def test_check_reports_reasons_and_writes_bad_list(mixed_dataset, tmp_path, capsys):  # noqa: F811
    manifest, _ = mixed_dataset
    bad_list = tmp_path / "bad.jsonl"
    code = main(["data", "check", str(manifest), "--json", "--bad-list", str(bad_list), "--max-image-pixels", "4000000",
                 "--workers", "0"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["read", "used", "skipped", "by_reason"]
    assert printed["used"] + printed["skipped"] == printed["read"] == 16
    assert set(printed["by_reason"]) == set(BAD_CLASSES)
    assert len(bad_list.read_text().splitlines()) == 10
    assert main(["data", "check", str(manifest), "--max-image-pixels", "4000000", "--workers", "0"]) == 0
    table = capsys.readouterr().out
    assert "too_many_pixels" in table and "skipped" in table


def test_strict_is_one_line_error(mixed_dataset, capsys):  # noqa: F811
    manifest, lines = mixed_dataset
    assert main(["data", "check", str(manifest), "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{manifest}:{lines['empty_caption']}" in err and "empty_caption" in err


def test_missing_manifest_is_clear(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope.jsonl")]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    assert "--bad-list" in capsys.readouterr().out


BAD_ARGUMENTS = [
    (["data", "check", "{m}", "--workers", "-1"], "argument --workers: must be >= 0"),
    (["data", "check", "{m}", "--max-image-pixels", "0"], "argument --max-image-pixels: must be >= 1"),
    (["data", "check", "{m}", "--image-root", ""], "argument --image-root: is empty"),
    (["data", "check", ""], "argument manifest: is empty"),
    (["data", "synth", "--n", "4", "--out", "", "--workers", "1"], "argument --out: is empty"),
    (["data", "synth", "--n", "4", "--out", " ", "--workers", "1"], "argument --out: is empty"),
    (["data", "synth", "--n", "0", "--out", "ds"], "argument --n: must be >= 1"),
    (["data", "synth", "--n", "4", "--out", "ds", "--workers", "0"], "argument --workers: must be >= 1"),
    (["data", "synth", "--n", "4", "--out", "ds", "--val-frac", "1.5"], "argument --val-frac: must be in [0, 1)"),
    (["data", "synth", "--n", "4", "--out", "ds", "--seed", "-1"], "argument --seed: must be >= 0"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGUMENTS)
def test_bad_arguments_are_one_line_and_write_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    m = tmp_path / "m.jsonl"
    m.write_text('{"image": "a.jpg", "caption": "x"}\n')
    assert main([a.replace("{m}", str(m)) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"mmscale: error: {message}") and "\n" not in err
    assert "Traceback" not in captured.out + captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # nothing written, --out "" included


def test_check_counts_bad_text_and_keeps_the_bom_row(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(seed=1))
    m = tmp_path / "m.jsonl"
    m.write_bytes(b"\xef\xbb\xbf" + b"\n".join([
        b'{"image": "a.jpg", "caption": "the first row, after a byte-order mark"}',
        b'{"image": "a.jpg", "caption": "lone \\ud800"}',
        b'{"image": "a\\u0000.jpg", "caption": "NUL in the path"}',
        b'{"image": "a.jpg", "caption": "\xff\xfe"}']) + b"\n")
    assert main(["data", "check", str(m), "--json", "--workers", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == {"read": 4, "used": 1, "skipped": 3, "by_reason": {"bad_text": 3}}
    assert main(["data", "check", str(m), "--workers", "0"]) == 0  # the table prints the reasons
    assert "holds a NUL byte" in capsys.readouterr().out
    assert main(["data", "check", str(m), "--strict", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{m}:2: bad_text" in err and "lone surrogate (U+D800)" in err
