"""The data benchmark on a manifest that lists missing and broken images: the warm-up skips them
with counted reasons and every variant runs on the rest; too few usable images is a clean error."""

from __future__ import annotations

import json

import pytest

from mmscale.bench.data_loading import bench_data_loading
from mmscale.cli import main
from mmscale.data.skips import SkipCounter
from mmscale.data.synth import synthesize
from mmscale.errors import DataError


@pytest.fixture
def bad_manifest(tmp_path):
    """bad.jsonl: 16 good synthesized samples with 2 missing files, a truncated JPEG and a directory
    listed among them."""
    synthesize(16, tmp_path, val_frac=0.0, workers=1, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    good = (tmp_path / rows[0]["image"]).read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "adir.jpg").mkdir()
    bad = [{"image": "nope1.jpg", "caption": "missing"}, {"image": "truncated.jpg", "caption": "truncated"},
           {"image": "adir.jpg", "caption": "a directory"}, {"image": "sub/nope2.jpg", "caption": "missing"}]
    mixed = rows[:4] + bad[:2] + rows[4:8] + bad[2:] + rows[8:]
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in mixed))
    return manifest


def test_missing_and_broken_images_are_skipped_with_reasons(bad_manifest):
    skips = SkipCounter()
    rows = bench_data_loading(str(bad_manifest), n_images=20, workers=1, batch_size=4,
                              variants=("reference_loop", "reference_dataloader", "decode_only"), skips=skips)
    assert skips.by_reason == {"missing_file": 2, "truncated_image": 1, "not_a_file": 1}
    assert skips.used == 16 and skips.read == 20
    by = {r.variant: r for r in rows}
    assert by["decode_only"].n_images == 16 and by["reference_dataloader"].n_images == 16  # the whole second pass
    assert all(r.img_per_s > 0 for r in rows)


def test_cli_runs_on_a_manifest_with_missing_images(bad_manifest, tmp_path, capsys):
    code = main(["bench", "data", "--data", str(bad_manifest), "--n", "20", "--workers", "1", "--batch-size", "4",
                 "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err
    result = json.loads(captured.out)
    assert result["skips"]["by_reason"] == {"missing_file": 2, "not_a_file": 1, "truncated_image": 1}
    assert len(result["rows"]) == 5 and all(r["img_per_s"] > 0 for r in result["rows"])


def test_too_few_usable_images_is_a_data_error(bad_manifest, tmp_path, capsys):
    with pytest.raises(DataError, match="8 usable images among the first 10 samples"):
        bench_data_loading(str(bad_manifest), n_images=10, workers=1, batch_size=9, variants=("decode_only",))
    code = main(["bench", "data", "--data", str(bad_manifest), "--n", "10", "--workers", "1", "--batch-size", "9",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "8 usable images" in err and "missing_file 1" in err and "need at least 9" in err


def test_min_images_is_one_batch():
    from mmscale.bench.data_loading import min_images

    assert min_images(16) == 16 and min_images(4) == 4
