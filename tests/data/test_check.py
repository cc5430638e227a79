"""check_dataset: every bad class counted by reason, the bad list complete, strict raising."""

import json

import pytest

from mmscale.data.check import check_dataset
from mmscale.errors import DataError
from tests.data.conftest import BAD_CLASSES


def test_counts_every_bad_class(mixed_dataset, tmp_path):
    manifest, lines = mixed_dataset
    report = check_dataset(str(manifest), max_image_pixels=4_000_000, num_workers=1)
    assert report.as_dict() == {"read": 16, "used": 6, "skipped": 10, "by_reason": {r: 1 for r in sorted(BAD_CLASSES)}}
    assert {(b.reason, b.line) for b in report.bad} == {(r, lines[r]) for r in BAD_CLASSES}
    out = tmp_path / "bad.jsonl"
    report.write_bad_list(out)
    listed = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(listed) == 10 and set(listed[0]) == {"reason", "path", "line", "detail", "listed_in"}
    by = {b["reason"]: b for b in listed}
    # a bad image: the image is the file at fault, the manifest line that named it comes with it
    assert by["missing_file"]["path"].endswith("img/nope.jpg") and by["missing_file"]["listed_in"] == str(manifest)
    assert by["malformed_line"]["path"] == str(manifest) and by["malformed_line"]["listed_in"] == ""
    missing = next(b for b in report.bad if b.reason == "missing_file")
    assert missing.where() == f"{missing.path} (listed at {manifest}:{lines['missing_file']})"


def test_strict_on_a_bad_image_names_the_manifest_line_and_the_image(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "m.jsonl").write_text('{"image": "a.jpg", "caption": "x"}\n')
    with pytest.raises(DataError) as info:
        check_dataset(str(tmp_path / "m.jsonl"), strict=True, num_workers=0)
    assert info.value.path == str(tmp_path / "m.jsonl") and info.value.line == 1
    assert "empty_file" in str(info.value) and "a.jpg" in str(info.value)


def test_strict_names_file_line_reason(mixed_dataset):
    manifest, lines = mixed_dataset
    with pytest.raises(DataError) as info:
        check_dataset(str(manifest), strict=True, num_workers=0)
    assert info.value.line == lines["empty_caption"] and info.value.path == str(manifest)


def test_clean_dataset(good_dataset):
    assert check_dataset(str(good_dataset), split="val", num_workers=0).as_dict() == {
        "read": 4, "used": 4, "skipped": 0, "by_reason": {}}
