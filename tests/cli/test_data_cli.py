"""``mmscale data synth|check`` through main([...]), as a user would type them."""

import json

from mmscale.cli import main
from tests.data.conftest import BAD_CLASSES, mixed_dataset  # noqa: F401  (fixture)


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
    code = main(["data", "check", str(manifest), "--json", "--bad-list", str(bad_list), "--max-pixels", "4000000",
                 "--workers", "0"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["read", "used", "skipped", "by_reason"]
    assert printed["used"] + printed["skipped"] == printed["read"] == 16
    assert set(printed["by_reason"]) == set(BAD_CLASSES)
    assert len(bad_list.read_text().splitlines()) == 10
    assert main(["data", "check", str(manifest), "--max-pixels", "4000000", "--workers", "0"]) == 0
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
    import pytest

    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    assert "--bad-list" in capsys.readouterr().out
