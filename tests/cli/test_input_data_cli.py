"""``mmscale data synth|check`` input errors: a file as --out, a dataset already in --out (refused
unless --overwrite, which removes only the synthesizer's own files), --workers 0, a --bad-list in a
directory that does not exist yet."""

import json

import pytest

from mmscale.cli import main


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmscale: error:") and err.count("\n") == 0 and "Traceback" not in err, err
    return err


def synth(out, *extra) -> int:
    return main(["data", "synth", "--n", "4", "--out", str(out), "--workers", "1", "--json", *extra])


def test_out_that_is_a_file_is_a_clean_error(tmp_path, capsys):
    target = tmp_path / "F"
    target.write_text("keep me")
    assert synth(target) == 2
    err = one_line_error(capsys)
    assert "--out" in err and str(target) in err and "not a directory" in err
    assert target.read_text() == "keep me"


def test_existing_dataset_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "D"
    assert main(["data", "synth", "--n", "20", "--out", str(out), "--workers", "1", "--json"]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert synth(out, "--seed", "1") == 2
    err = one_line_error(capsys)
    assert "--out" in err and str(out) in err and "already holds a dataset" in err and "--overwrite" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched


def test_overwrite_replaces_only_the_synthesizers_files(tmp_path, capsys):
    out = tmp_path / "D"
    assert main(["data", "synth", "--n", "20", "--out", str(out), "--workers", "1", "--json"]) == 0
    assert main(["data", "synth", "--n", "3", "--out", str(out), "--workers", "1", "--json",
                 "--format", "wds", "--val-frac", "0"]) == 2  # a wds set over a files set: refused too
    unrelated = [out / "notes.txt", out / "images" / "README", out / "images" / "0000" / "mine.png",
                 out / "train-extra.tar"]
    for path in unrelated:
        path.write_text("not the synthesizer's")
    capsys.readouterr()
    assert synth(out, "--overwrite", "--seed", "1") == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["n_train"], result["n_val"]) == (4, 0)
    images = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.jpg"))
    assert images == [f"images/0000/{i:07d}.jpg" for i in range(4)]  # not the 20 of before
    manifest = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [row["image"] for row in manifest] == images
    assert (out / "val.jsonl").read_text() == ""
    assert all(path.read_text() == "not the synthesizer's" for path in unrelated)


def test_overwrite_across_layouts_leaves_one_dataset(tmp_path, capsys):
    out = tmp_path / "D"
    assert synth(out) == 0
    assert main(["data", "synth", "--n", "3", "--out", str(out), "--workers", "1", "--json",
                 "--format", "wds", "--val-frac", "0", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train-000000.tar"]  # images/ and manifests gone


def test_workers_zero_is_refused_and_the_report_counts_real_processes(tmp_path, capsys):
    assert synth(tmp_path / "a", "--workers", "0") == 2
    err = one_line_error(capsys)
    assert "--workers" in err and "got 0" in err
    assert synth(tmp_path / "b", "--workers", "8") == 0  # 4 samples are one chunk: one process renders
    assert json.loads(capsys.readouterr().out)["workers"] == 1
    assert main(["data", "synth", "--n", "4", "--out", str(tmp_path / "c"), "--workers", "3"]) == 0
    assert "on 1 process," in capsys.readouterr().out


def test_workers_help_says_what_it_takes(capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ">= 1" in text and "--overwrite" in text


def test_bad_list_in_a_new_directory_is_created(tmp_path, capsys):
    out = tmp_path / "D"
    assert synth(out) == 0
    bad_list = tmp_path / "nonexistent" / "dir" / "x.jsonl"
    assert main(["data", "check", str(out / "train.jsonl"), "--json", "--workers", "0",
                 "--bad-list", str(bad_list)]) == 0
    assert bad_list.is_file() and bad_list.read_text() == ""


def test_bad_list_that_cannot_be_a_file_is_refused_before_checking(tmp_path, capsys):
    out = tmp_path / "D"
    assert synth(out) == 0
    (tmp_path / "F").write_text("")
    capsys.readouterr()
    for bad_list, want in [(tmp_path, "is a directory"), (tmp_path / "F" / "x.jsonl", "is a file")]:
        assert main(["data", "check", str(out / "train.jsonl"), "--json", "--workers", "0",
                     "--bad-list", str(bad_list)]) == 2
        err = one_line_error(capsys)
        assert "--bad-list" in err and want in err
