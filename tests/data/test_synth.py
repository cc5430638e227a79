"""The synthetic dataset: deterministic bytes, photo-like JPEGs, captions that say what is drawn."""

import hashlib
import io
import json
import re
import tarfile

import numpy as np
from PIL import Image

from mmscale.data.synth import synthesize
from mmscale.data.synth_scene import COLOURS, SHAPES, describe, plan_scene, render_scene


def digest(directory) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = synthesize(10, tmp_path / "a", seed=5, workers=1, progress=False)
    synthesize(10, tmp_path / "b", seed=5, workers=2, progress=False)
    synthesize(10, tmp_path / "c", seed=6, workers=1, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    assert (a.n_train, a.n_val) == (9, 1)
    lines = (tmp_path / "a" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 9 and json.loads(lines[0])["image"] == "images/0000/0000000.jpg"


def test_wds_layout_is_deterministic(tmp_path):
    r = synthesize(6, tmp_path / "a", fmt="wds", seed=1, val_frac=0.5, workers=2, progress=False)
    synthesize(6, tmp_path / "b", fmt="wds", seed=1, val_frac=0.5, workers=1, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert [p.split("/")[-1] for p in r.files] == ["train-000000.tar", "val-000000.tar"]
    with tarfile.open(r.files[0]) as tar:
        assert tar.getnames()[:2] == ["0000000.jpg", "0000000.txt"] and len(tar.getnames()) == 6


def test_images_are_photo_like():
    data, caption = render_scene(0, 7)
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and img.size == (640, 480)
    assert 20_000 < len(data) < 200_000  # tens of kB: real entropy, not flat colour
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert arr.std() > 15 and len(np.unique(arr.reshape(-1, 3)[:5000], axis=0)) > 500


def test_captions_describe_every_object():
    for index in range(30):
        rng = np.random.default_rng([0, index])
        background, objects = plan_scene(rng)
        caption = describe(background, objects, 0)
        assert render_scene(0, index)[1].count(background) == 1
        for obj in objects:
            assert obj.colour in caption and obj.shape in caption and obj.position in caption
        assert len({(o.row, o.col) for o in objects}) == len(objects)  # distinct cells: positions are true
        count_words = re.findall(r"\b(two|three|four)\b", caption)
        groups = {(o.colour, o.shape) for o in objects}
        assert len(count_words) == sum(1 for g in groups if sum((o.colour, o.shape) == g for o in objects) > 1)


def test_vocabulary_is_the_drawn_one():
    caption = render_scene(3, 11)[1]
    assert any(c in caption for c in COLOURS) and any(s in caption for s in SHAPES)
