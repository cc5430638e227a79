"""A JSONL line that is not JSON is reported with where on the line it breaks."""

from mmscale.data.readers import read_manifest
from mmscale.data.skips import SkipCounter


def test_broken_jsonl_line_names_the_column(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"image": "a.jpg", "caption": "fine"}\n'
                        '{"image": "b.jpg", "caption": "tab\there"}\n'  # a raw control character
                        '{"image": "c.jpg", "caption": }\n', encoding="utf-8")
    counter = SkipCounter()
    read_manifest(manifest, counter=counter)
    details = {bad.line: bad.detail for bad in counter.examples}
    assert details[2] == "not JSON (Invalid control character at column 35)"
    assert details[3] == "not JSON (Expecting value at column 31)"
