"""Every manifest format into one index; bad rows counted with file and line, or raised under strict."""

import json

import numpy as np
import pytest

from mmscale.data.readers import read_manifest, resolve_source
from mmscale.data.skips import SkipCounter
from mmscale.errors import DataError
from tests.data.conftest import write_jsonl


def rows_of(index):
    return [(index.raw_path(i), index.caption(i)) for i in range(len(index))]


def test_jsonl_caption_or_text_and_relative_paths(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"image": "a.jpg", "caption": "first"}, "",
                                            {"image": "/abs/b.jpg", "text": "second"}])
    index = read_manifest(m)
    assert rows_of(index) == [("a.jpg", "first"), ("/abs/b.jpg", "second")]
    assert index.path(0) == str(tmp_path / "a.jpg") and index.path(1) == "/abs/b.jpg"
    assert index.source(1) == (str(m), 3)


def test_jsonl_bad_rows_are_counted_with_lines(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [
        {"image": "a.jpg", "caption": "ok"}, "{not json", "[1, 2]", {"caption": "no image"},
        {"image": "b.jpg"}, {"image": "c.jpg", "caption": "  "}, {"image": 3, "caption": "x"},
        {"image": "d.jpg", "caption": "ok too"}])
    counter = SkipCounter()
    index = read_manifest(m, counter=counter)
    assert len(index) == 2
    assert counter.by_reason == {"malformed_line": 3, "missing_field": 2, "empty_caption": 1}
    assert [(b.reason, b.line) for b in counter.examples] == [
        ("malformed_line", 2), ("malformed_line", 3), ("missing_field", 4), ("missing_field", 5),
        ("empty_caption", 6), ("malformed_line", 7)]
    assert all(b.path == str(m) for b in counter.examples)


def test_strict_raises_naming_file_and_line(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"image": "a.jpg", "caption": "ok"}, {"image": "b.jpg"}])
    with pytest.raises(DataError) as info:
        read_manifest(m, strict=True)
    assert info.value.line == 2 and info.value.path == str(m) and "missing_field" in str(info.value)


def test_csv(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text('image,caption\na.jpg,"a caption, with a comma"\nb.jpg\n,missing image\nc.jpg,  \n'
                 'd.jpg,"multi\nline"\n')
    counter = SkipCounter()
    index = read_manifest(m, counter=counter)
    assert rows_of(index) == [("a.jpg", "a caption, with a comma"), ("d.jpg", "multi\nline")]
    assert counter.by_reason == {"malformed_line": 1, "missing_field": 1, "empty_caption": 1}
    assert [b.line for b in counter.examples] == [3, 4, 5]


def test_csv_without_header_columns_is_an_error(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("path,label\na.jpg,cat\n")
    with pytest.raises(DataError, match="'image' and 'caption'"):
        read_manifest(m)


def test_coco_one_sample_per_caption(tmp_path):
    m = tmp_path / "captions.json"
    m.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "000001.jpg"}, {"id": 2, "file_name": "000002.jpg"}],
        "annotations": [{"image_id": 1, "caption": "a cat"}, {"image_id": 1, "caption": "a small cat"},
                        {"image_id": 2, "caption": "a dog"}, {"image_id": 9, "caption": "orphan"},
                        {"caption": "no id"}, {"image_id": 2, "caption": ""}]}))
    counter = SkipCounter()
    index = read_manifest(m, image_root=str(tmp_path / "val2017"), counter=counter)
    assert rows_of(index) == [("000001.jpg", "a cat"), ("000001.jpg", "a small cat"), ("000002.jpg", "a dog")]
    assert index.path(0) == str(tmp_path / "val2017" / "000001.jpg")
    assert counter.by_reason == {"missing_field": 2, "empty_caption": 1}


def test_coco_bad_top_level(tmp_path):
    m = tmp_path / "c.json"
    m.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="annotations"):
        read_manifest(m)


def test_resolve_source(tmp_path, good_dataset):
    assert resolve_source(good_dataset).fmt == "jsonl"
    assert resolve_source(good_dataset, split="val").files == [str(good_dataset / "val.jsonl")]
    with pytest.raises(DataError, match="manifest not found"):
        resolve_source(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="no 'test' manifest"):
        resolve_source(good_dataset, split="test")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(DataError, match="--format"):
        resolve_source(tmp_path / "x.parquet")


def test_limit_and_index_layout(good_dataset):
    index = read_manifest(good_dataset, limit=5)
    assert len(index) == 5
    # Columnar: a handful of numpy buffers, no per-row Python objects.
    for name in ("path_bytes", "caption_bytes"):
        assert getattr(index, name).dtype == np.uint8
    assert index.path_offsets.dtype == np.int64 and len(index.path_offsets) == 6
    head = index.head(2)
    assert rows_of(head) == rows_of(index)[:2]
    assert index.nbytes == sum(a.nbytes for a in (index.path_bytes, index.path_offsets, index.caption_bytes,
                                                  index.caption_offsets, index.file_ids, index.lines))
    with pytest.raises(IndexError):
        index.caption(5)


def test_unicode_round_trip():
    from mmscale.data.index import IndexBuilder

    b = IndexBuilder()
    texts = ["café ☕", "一只猫", "🙂 emoji", ""]
    for i, t in enumerate(texts):
        b.add(f"dir/{t}.jpg", t, i + 1)
    index = b.build()
    assert [index.caption(i) for i in range(4)] == texts and index.raw_path(1) == "dir/一只猫.jpg"
    assert index.caption(-1) == ""
