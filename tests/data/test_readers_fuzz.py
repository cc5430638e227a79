"""Fuzzed manifests and shards: whatever the bytes, no exception escapes a reader or the loader
(a whole-file problem is a ``DataError``), and every record is used or skipped for a reason."""

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mmscale.data.config import DataConfig
from mmscale.data.dataset import Sample
from mmscale.data.loader import build_loader
from mmscale.data.readers import read_manifest
from mmscale.data.skips import SkipCounter
from mmscale.data.wds import WdsDataset
from mmscale.errors import DataError
from tests.data.conftest import jpeg_bytes, write_shard

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BOM = b"\xef\xbb\xbf"
# any code point, lone surrogates and NUL included
TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
JSON_VALUE = st.one_of(TEXT, st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2))
ROW = st.dictionaries(st.sampled_from(["image", "caption", "text", "other"]), JSON_VALUE, max_size=4)


def usable(image, caption) -> bool:
    """The rule a row must meet to be indexed, restated from the readers' documentation."""
    if not isinstance(image, str) or not isinstance(caption, str) or not image or not caption.strip():
        return False
    valid = all(not "\ud800" <= ch <= "\udfff" for ch in image + caption)
    return valid and "\x00" not in image


def read(path):
    counter = SkipCounter()
    index = read_manifest(path, counter=counter)
    return [(index.raw_path(i), index.caption(i)) for i in range(len(index))], counter


def encode(text: str, bom: bool) -> bytes:
    # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, as a broken writer leaves them
    return (BOM if bom else b"") + text.encode("utf-8", "surrogatepass")


@FUZZ
@given(st.binary(max_size=600), st.booleans())
@example(b"\xef", False)  # a lone first byte of a byte-order mark: utf-8-sig's decoder dropped it
@example(b"\xef\xbb", False)
def test_jsonl_any_bytes(tmp_path, data, bom):
    m = tmp_path / "m.jsonl"
    m.write_bytes((BOM if bom else b"") + data)
    rows, counter = read(m)
    records = [line for line in data.split(b"\n") if line.strip(b" \t\r\n")]
    assert len(rows) + counter.skipped == len(records)
    assert all(usable(image, caption) for image, caption in rows)


@FUZZ
@given(st.lists(ROW, max_size=8), st.booleans(), st.booleans())
def test_jsonl_rows_are_used_exactly_when_usable(tmp_path, objects, ascii_only, bom):
    lines = [json.dumps(obj, ensure_ascii=ascii_only) for obj in objects]
    m = tmp_path / "m.jsonl"
    m.write_bytes(encode("\n".join(lines) + "\n", bom))
    rows, counter = read(m)
    parsed = [json.loads(line.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape"))
              for line in lines]  # as the file's bytes read back: a surrogate pair escaped in ASCII joins
    caption = lambda obj: obj.get("caption", obj.get("text"))  # noqa: E731
    expected = [(obj["image"], caption(obj)) for obj in parsed
                if usable(obj.get("image"), caption(obj))]
    assert rows == expected
    assert len(rows) + counter.skipped == len(objects)


@FUZZ
@given(st.binary(max_size=600), st.booleans())
def test_csv_any_bytes(tmp_path, data, bom):
    m = tmp_path / "m.csv"
    m.write_bytes((BOM if bom else b"") + b"image,caption\n" + data)
    rows, counter = read(m)  # the header parses, so no DataError
    assert all(usable(image, caption) for image, caption in rows)
    assert counter.skipped == sum(counter.by_reason.values()) and len(rows) <= data.count(b"\n") + 1


@FUZZ
@given(st.lists(st.tuples(TEXT, TEXT), max_size=8), st.booleans())
def test_csv_rows_are_used_exactly_when_usable(tmp_path, pairs, bom):
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["image", "caption"])
    writer.writerows(pairs)
    m = tmp_path / "m.csv"
    m.write_bytes(encode(text.getvalue(), bom))
    rows, counter = read(m)
    expected = [(image.strip(), caption) for image, caption in pairs if usable(image.strip(), caption)]
    assert rows == expected
    assert len(rows) + counter.skipped == len(pairs)


@FUZZ
@given(st.binary(max_size=400))
def test_coco_any_bytes(tmp_path, data):
    m = tmp_path / "captions.json"
    m.write_bytes(data)
    try:
        rows, counter = read(m)
    except DataError:
        return  # a whole file that is not COCO JSON: one clear error
    annotations = json.loads(data.decode("utf-8-sig", "surrogateescape"))["annotations"]
    assert len(rows) + counter.skipped == len(annotations)


@FUZZ
@given(st.lists(st.tuples(JSON_VALUE, TEXT), max_size=4),
       st.lists(st.fixed_dictionaries({}, optional={"image_id": JSON_VALUE, "caption": JSON_VALUE}), max_size=8),
       st.booleans())
def test_coco_every_annotation_is_used_or_skipped(tmp_path, images, annotations, bom):
    data = {"images": [{"id": i, "file_name": name} for i, name in images], "annotations": annotations}
    m = tmp_path / "captions.json"
    m.write_bytes(encode(json.dumps(data, ensure_ascii=False), bom))
    rows, counter = read(m)
    assert len(rows) + counter.skipped == len(annotations)
    assert all(usable(image, caption) for image, caption in rows)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["jpg", "png", "txt", "json"]), st.binary(max_size=40)), max_size=6),
       st.binary(max_size=64), st.integers(0, 3000))
def test_webdataset_any_members_and_a_torn_shard(tmp_path, members, caption, cut):
    samples = [("good.jpg", jpeg_bytes(16, 16)), ("good.txt", caption)]
    samples += [(f"k{n}.{ext}", data) for n, (ext, data) in enumerate(members)]
    shard = write_shard(tmp_path / "train-000000.tar", samples)
    whole = list(WdsDataset([str(shard)], image_size=16))
    keys = {name.split(".")[0] for name, _ in samples}
    assert len(whole) == len(keys)  # one record per key, used or skipped
    good = [s for s in whole if isinstance(s, Sample)]
    assert all(usable("x", s.caption) for s in good)
    shard.write_bytes(shard.read_bytes()[:cut])  # torn: a counted bad_shard, never an exception
    assert len(list(WdsDataset([str(shard)], image_size=16))) <= len(keys) + 1


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    (d / "a.jpg").write_bytes(jpeg_bytes(16, 16))
    (d / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return d


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a.jpg", "bad.jpg", "missing.jpg", "a\x00.jpg", "a\ud800.jpg"]),
                          TEXT), max_size=10))
def test_loader_reads_every_row_once_and_tokenizes_what_it_keeps(image_dir, tokenizer, pairs):
    m = image_dir / "train.jsonl"
    m.write_bytes(encode("\n".join(json.dumps({"image": i, "caption": c}) for i, c in pairs) + "\n", False))
    cfg = DataConfig(path=str(m), image_size=16, max_text_len=8, num_workers=0, shuffle=False)
    if not any(usable(i, c) for i, c in pairs):  # nothing indexed: one error counting the skips
        with pytest.raises(DataError, match="no usable sample"):
            build_loader(cfg, 4, tokenizer, drop_last=False)
        return
    loader = build_loader(cfg, 4, tokenizer, drop_last=False)
    event("loader built")
    batches = list(loader)
    assert loader.skips.read + loader.index_skips.skipped == len(pairs)
    used = [(i, c) for i, c in pairs if i == "a.jpg" and usable(i, c)]
    assert [c for b in batches for c in b.captions] == [c for _, c in used]
    assert all(b.input_ids.shape == (len(b.captions), 8) for b in batches)
