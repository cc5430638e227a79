import pytest

from mmscale.data.skips import BadSample, SkipCounter, SkipReason
from mmscale.errors import DataError


def test_counts_and_invariant():
    c = SkipCounter()
    c.add_used(5)
    c.add(SkipReason.missing_file, "a.jpg", line=3)
    c.add("empty_caption", "m.jsonl", line=7)
    c.add(SkipReason.missing_file, "b.jpg")
    assert (c.read, c.used, c.skipped) == (8, 5, 3)
    assert c.as_dict() == {"read": 8, "used": 5, "skipped": 3,
                           "by_reason": {"empty_caption": 1, "missing_file": 2}}
    assert c.examples[0] == BadSample("missing_file", "a.jpg", 3, "")


def test_unknown_reason_is_refused():
    with pytest.raises(ValueError):
        SkipCounter().add("because", "x")


def test_merge_keeps_invariant_and_caps_examples():
    a, b = SkipCounter(max_examples=3), SkipCounter()
    a.add_used(2)
    for i in range(5):
        b.add(SkipReason.corrupt_image, f"{i}.jpg")
    b.add_used(4)
    a.merge(b)
    assert (a.read, a.used, a.skipped) == (11, 6, 5)
    assert len(a.examples) == 3 and a.by_reason == {"corrupt_image": 5}
    assert a.used + a.skipped == a.read


def test_bad_sample_error_names_file_line_reason():
    err = BadSample("truncated_image", "img/x.jpg", 12, "image file is truncated").to_error()
    assert isinstance(err, DataError)
    assert "img/x.jpg:12" in str(err) and "truncated_image" in str(err)
