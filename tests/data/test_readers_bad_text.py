"""The byte sequences that used to crash a reader: each is a counted ``bad_text`` skip naming file
and line, a row that is read (a byte-order mark), or a counted ``malformed_line``."""

import json

from mmscale.data.readers import read_manifest
from mmscale.data.skips import SkipCounter
from tests.data.conftest import write_shard

BOM = b"\xef\xbb\xbf"


def read(path, **kw):
    counter = SkipCounter()
    index = read_manifest(path, counter=counter, **kw)
    rows = [(index.raw_path(i), index.caption(i), index.source(i)[1]) for i in range(len(index))]
    return rows, counter


def test_jsonl_bad_text_is_counted_and_a_bom_keeps_the_first_row(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_bytes(BOM + b"\n".join([
        b'{"image": "a.jpg", "caption": "first"}',
        b'{"image": "b.jpg", "caption": "lone \\ud800 surrogate"}',
        b'{"image": "c\\u0000.jpg", "caption": "NUL in the path"}',
        b'{"image": "d.jpg", "caption": "bad byte \xff here"}',
        b'{"image": "e.jpg", "caption": "pair \\ud83d\\ude00 is fine"}',
        b'{"image": "f.jpg", "caption": "' + b"1" * 5000 + b'", "n": ' + b"1" * 5000 + b"}",
        b"[" * 100_000,
        b"\x1c",  # whitespace to Python, not to JSON: a malformed line, not a blank one
    ]) + b"\n")
    rows, counter = read(m)
    assert rows == [("a.jpg", "first", 1), ("e.jpg", "pair \U0001F600 is fine", 5)]
    assert counter.by_reason == {"bad_text": 3, "malformed_line": 3}
    details = {b.line: b.detail for b in counter.examples}
    assert details[2] == "'caption' holds a lone surrogate (U+D800) at character 6"
    assert details[3] == "'image' holds a NUL byte at character 2"
    assert details[4] == "'caption' holds invalid UTF-8 (byte 0xFF) at character 10"
    assert len(rows) + counter.skipped == 8


def test_csv_bom_header_and_bad_text(tmp_path):
    m = tmp_path / "m.csv"
    m.write_bytes(BOM + b"image,caption\r\na.jpg,first\r\nb.jpg,bad \xc3 byte\r\nc\x00.jpg,NUL path\r\n"
                  + b'd.jpg,"' + b"x" * 200_000 + b'"\r\ne.jpg,last\r\n')
    rows, counter = read(m)
    assert rows == [("a.jpg", "first", 2), ("e.jpg", "last", 6)]
    assert counter.by_reason == {"bad_text": 2, "malformed_line": 1}
    assert [b.line for b in counter.examples] == [3, 4, 5]
    assert "field larger than field limit" in counter.examples[2].detail


def test_coco_bom_bad_text_and_odd_ids(tmp_path):
    m = tmp_path / "captions.json"
    data = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": [2], "file_name": "b.jpg"},
                       {"id": 3, "file_name": "c\u0000.jpg"}],
            "annotations": [{"image_id": 1, "caption": "ok"}, {"image_id": [2], "caption": "list id"},
                            {"image_id": {"x": 1}, "caption": "object id"}, {"image_id": 3, "caption": "NUL"},
                            {"image_id": 1, "caption": "lone \ud800"}]}
    m.write_bytes(BOM + json.dumps(data).encode())
    rows, counter = read(m)
    assert rows == [("a.jpg", "ok", 1)]
    assert counter.by_reason == {"missing_field": 2, "bad_text": 2}
    assert [b.line for b in counter.examples] == [2, 3, 4, 5]


def test_webdataset_caption_bytes_are_a_counted_skip(tmp_path):
    from mmscale.data.dataset import Sample
    from mmscale.data.wds import WdsDataset
    from tests.data.conftest import jpeg_bytes

    shard = write_shard(tmp_path / "train-000000.tar", [
        ("a.jpg", jpeg_bytes(seed=1)), ("a.txt", BOM + b"with a BOM"),
        ("b.jpg", jpeg_bytes(seed=2)), ("b.txt", b"bad \xff byte"),
        ("c.jpg", jpeg_bytes(seed=3)), ("c.txt", "lone \ud800".encode("utf-8", "surrogatepass"))])
    items = list(WdsDataset([str(shard)], image_size=16))
    assert [i.caption for i in items if isinstance(i, Sample)] == ["with a BOM"]
    assert sorted(i.reason for i in items if not isinstance(i, Sample)) == ["bad_text", "bad_text"]
