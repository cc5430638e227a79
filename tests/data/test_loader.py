"""build_loader: batch contents, skip accounting in workers, strict mode, resume, WebDataset."""

import pytest
import torch
from torchvision import transforms

from mmscale.data.config import DataConfig
from mmscale.data.loader import build_loader
from mmscale.data.normalize import IMAGENET_MEAN, IMAGENET_STD, to_model_input
from mmscale.data.sampler import ResumableSampler, epoch_order
from mmscale.errors import ConfigError, DataError
from tests.data.conftest import BAD_CLASSES, jpeg_bytes, write_shard


def cfg(path, **kw):
    base = dict(path=str(path), image_size=32, max_text_len=16, num_workers=0, shuffle=False)
    base.update(kw)
    return DataConfig(**base)


@pytest.mark.parametrize("workers", [0, 2])
def test_batches(good_dataset, tokenizer, workers):
    loader = build_loader(cfg(good_dataset, num_workers=workers, prefetch_factor=2), 5, tokenizer, drop_last=False)
    batches = list(loader)
    assert [len(b) for b in batches] == [5, 5, 2]
    b = batches[0]
    assert b.images.dtype == torch.uint8 and b.images.shape == (5, 3, 32, 32)
    assert b.input_ids.shape == (5, 16) and b.attention_mask.dtype == torch.int64
    assert b.captions[0] == "sample number 0 a red circle" and b.indices.tolist() == [0, 1, 2, 3, 4]
    assert loader.skips.as_dict() == {"read": 12, "used": 12, "skipped": 0, "by_reason": {}}
    assert loader.state_dict() == {"epoch": 1, "sample_offset": 0}


def test_skipped_samples_never_crash_and_are_counted(mixed_dataset, tokenizer):
    manifest, _ = mixed_dataset
    loader = build_loader(cfg(manifest, num_workers=2, max_image_pixels=4_000_000), 4, tokenizer, drop_last=False)
    batches = list(loader)
    used = sum(len(b) for b in batches)
    assert used == 6
    counts = loader.skips.as_dict()
    # Decode-time reasons reach the batches; manifest-level ones are counted once at indexing.
    decode_time = {r for r in BAD_CLASSES if r not in ("empty_caption", "malformed_line", "missing_field")}
    assert counts["by_reason"] == {r: 1 for r in decode_time}
    assert loader.index_skips.by_reason == {"empty_caption": 1, "malformed_line": 1, "missing_field": 1}
    for b in batches:
        assert b.skips.used == len(b) and b.skips.used + b.skips.skipped == b.skips.read
        assert b.images.shape[0] == b.input_ids.shape[0] == len(b.captions)


def test_strict_raises_data_error_naming_the_sample(mixed_dataset, tokenizer):
    manifest, lines = mixed_dataset
    bad_manifest_row = cfg(manifest, strict=True)
    with pytest.raises(DataError) as info:
        build_loader(bad_manifest_row, 4, tokenizer)
    assert info.value.line == lines["empty_caption"]
    # Keep only the rows that survive indexing: the first decode-time problem raises while iterating.
    text = manifest.read_text().splitlines()
    clean = manifest.with_name("clean.jsonl")
    clean.write_text("\n".join(text[: lines["empty_caption"] - 1]) + "\n")
    loader = build_loader(cfg(clean, strict=True, num_workers=1), 4, tokenizer, drop_last=False)
    with pytest.raises(DataError) as info:
        list(loader)
    assert info.value.line == lines["missing_file"] and "missing_file" in str(info.value)
    assert info.value.path == str(clean) and "img/nope.jpg" in str(info.value)  # manifest line + image


def test_resume_continues_the_same_permutation(good_dataset, tokenizer):
    c = cfg(good_dataset, shuffle=True, seed=3)
    full = [i for b in build_loader(c, 2, tokenizer, epoch=1) for i in b.indices.tolist()]
    assert sorted(full) == list(range(12)) and full != list(range(12))
    first = build_loader(c, 2, tokenizer, epoch=1)
    seen = []
    for k, b in enumerate(first):
        seen += b.indices.tolist()
        if k == 1:
            state = first.state_dict()
            break
    assert state == {"epoch": 1, "sample_offset": 4}
    resumed = build_loader(c, 2, tokenizer, epoch=state["epoch"], start_sample=state["sample_offset"])
    rest = [i for b in resumed for i in b.indices.tolist()]
    assert seen + rest == full
    other_epoch = [i for b in build_loader(c, 2, tokenizer, epoch=2) for i in b.indices.tolist()]
    assert other_epoch != full


def test_sampler_ranks_partition_the_epoch():
    parts = [list(ResumableSampler(10, seed=1, rank=r, num_replicas=3)) for r in range(3)]
    assert all(len(p) == 3 for p in parts)
    assert len(set(sum(parts, []))) == 9 and set(sum(parts, [])) <= set(epoch_order(10, 1, 0, True).tolist())


def test_limit(good_dataset, tokenizer):
    loader = build_loader(cfg(good_dataset, limit=5), 2, tokenizer, drop_last=False)
    assert sum(len(b) for b in loader) == 5


def test_config_validation(good_dataset, tokenizer):
    with pytest.raises(ConfigError, match="data.image_size"):
        build_loader(cfg(good_dataset, image_size=2), 2, tokenizer)
    with pytest.raises(ConfigError, match="batch_size"):
        build_loader(cfg(good_dataset), 0, tokenizer)


def test_normalize_matches_reference_transform():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    ours = to_model_input(images, "cpu", torch.float32)
    norm = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    ref = torch.stack([norm(img.float() / 255) for img in images])
    assert torch.allclose(ours, ref, atol=1e-5)
    assert to_model_input(images, "cpu", torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        to_model_input(images.float())


def test_webdataset_shards(tmp_path, tokenizer):
    write_shard(tmp_path / "train-000000.tar", [
        ("a.jpg", jpeg_bytes(seed=1)), ("a.txt", b"first caption"),
        ("b.png", jpeg_bytes(seed=2, fmt="PNG")), ("b.txt", b"second caption"),
        ("c.jpg", b"not an image at all"), ("c.txt", b"bad image"),
        ("d.jpg", jpeg_bytes(seed=3)),  # no caption
        ("e.webp", jpeg_bytes(seed=4, fmt="WEBP")), ("e.txt", b"   ")])
    write_shard(tmp_path / "train-000001.tar", [("f.jpg", jpeg_bytes(seed=5)), ("f.txt", b"sixth")])
    loader = build_loader(cfg(tmp_path, num_workers=0), 4, tokenizer, drop_last=False)
    batches = list(loader)
    assert sorted(c for b in batches for c in b.captions) == ["first caption", "second caption", "sixth"]
    assert loader.skips.as_dict() == {"read": 6, "used": 3, "skipped": 3,
                                      "by_reason": {"empty_caption": 1, "missing_field": 1, "not_an_image": 1}}
    assert batches[0].images.shape[1:] == (3, 32, 32)


@pytest.mark.parametrize("workers", [0, 2])
def test_endless_loader_yields_the_per_epoch_batches_and_their_positions(good_dataset, tokenizer, workers):
    c = cfg(good_dataset, shuffle=True, seed=3, num_workers=workers, prefetch_factor=2)
    expected, positions = [], []
    for epoch in (1, 2, 3):  # 12 samples, batches of 5, drop_last: two batches an epoch
        once = build_loader(c, 5, tokenizer, epoch=epoch, start_sample=5 if epoch == 1 else 0)
        for b in once:
            expected.append(b.indices.tolist())
            positions.append(once.state_dict())
        positions[-1] = {"epoch": epoch + 1, "sample_offset": 0}  # the epoch's end names the next
    endless = build_loader(c, 5, tokenizer, epoch=1, start_sample=5, endless=True)
    got, states = [], []
    for b in endless:
        got.append(b.indices.tolist())
        states.append(endless.state_dict())
        if len(got) == len(expected):
            break
    endless.close()
    assert got == expected and states == positions


def test_endless_loader_asks_for_the_next_epoch_before_this_one_is_used(good_dataset, tokenizer, monkeypatch):
    from mmscale.data import sampler as sampler_module

    handed = []  # batches of indices given to the workers, in order
    inner = sampler_module.EpochBatches.__iter__

    def recording(self):
        for batch in inner(self):
            handed.append(batch)
            yield batch
    monkeypatch.setattr(sampler_module.EpochBatches, "__iter__", recording)
    loader = build_loader(cfg(good_dataset, num_workers=2, prefetch_factor=2), 4, tokenizer, endless=True)
    stream = iter(loader)
    used = [next(stream).indices.tolist() for _ in range(3)]  # 12 samples: epoch 0 is 3 batches
    assert loader.state_dict() == {"epoch": 1, "sample_offset": 0}
    # the workers were already given epoch 1's batches (read ahead across the boundary)
    assert len(handed) > 3 and handed[:3] == used and sorted(sum(handed[3:6], [])) == list(range(12))
    stream.close()
    loader.close()


def test_a_manifest_with_no_usable_row_is_one_error_counting_the_skips(tmp_path, tokenizer):
    m = tmp_path / "train.jsonl"
    m.write_text('{"image": "a.jpg", "caption": "lone \\ud800"}\n{not json\n{"image": "b.jpg"}\n')
    with pytest.raises(DataError) as info:
        build_loader(cfg(m), 2, tokenizer)
    assert str(info.value) == (f"{m}: no usable sample: all 3 rows skipped (bad_text 1, malformed_line 1, "
                               "missing_field 1); `mmscale data check` lists them")
