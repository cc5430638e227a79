"""The reference pipeline runs offline and agrees with ours up to the JPEG draft shortcut."""

import pytest
import torch

from mmscale.data.config import DataConfig
from mmscale.data.loader import build_loader
from mmscale.data.normalize import to_model_input
from mmscale.data.readers import read_manifest
from mmscale.data.reference import MultiModalDataset, reference_loader, reference_tokenizer
from mmscale.errors import ConfigError


def test_reference_matches_ours(good_dataset, tokenizer):
    index = read_manifest(good_dataset)
    paths = [index.path(i) for i in range(4)]
    captions = [index.caption(i) for i in range(4)]
    ref = next(iter(reference_loader(MultiModalDataset(paths, captions, reference_tokenizer(), 32, 16), 4, 0)))
    ours = next(iter(build_loader(DataConfig(path=str(good_dataset), image_size=32, max_text_len=16,
                                             num_workers=0, shuffle=False), 4, tokenizer)))
    assert torch.equal(ref["input_ids"], ours.input_ids)
    assert torch.equal(ref["attention_mask"], ours.attention_mask)
    pixels = to_model_input(ours.images, "cpu")
    assert ref["pixel_values"].dtype == torch.float32 and pixels.shape == ref["pixel_values"].shape
    # 96x64 -> 32x32 decodes at a 1/2 DCT scale first; one grey level is 1 / 255 / std ~ 0.017.
    diff = (pixels - ref["pixel_values"]).abs()
    assert diff.mean() < 0.02 and diff.max() < 0.12


def test_reference_tokenizer_reads_every_vocabulary_form(tmp_path, monkeypatch, tokenizer):
    """A bare vocab.txt (the shipped default), and a tokenizer.json, give BERT's ids, not an
    empty vocabulary (transformers 5 ignores ``BertTokenizer(vocab_file=...)``)."""
    from mmscale.data.tokenizer import bundled_tokenizer_dir

    monkeypatch.delenv("MMSCALE_TOKENIZER", raising=False)
    texts = ["two BLUE squares", "Café crème brûlée"]
    ours = tokenizer.encode_batch(texts, max_len=16)[0].tolist()
    from_vocab = reference_tokenizer()
    tokenizer.backend.save(str(tmp_path / "tokenizer.json"))
    from_json = reference_tokenizer(tmp_path / "tokenizer.json")
    for ref in (from_vocab, from_json):
        assert ref(texts, truncation=True, padding="max_length", max_length=16)["input_ids"] == ours
    (tmp_path / "words.txt").write_bytes((bundled_tokenizer_dir() / "vocab.txt").read_bytes())
    with pytest.raises(ConfigError, match="named vocab.txt"):
        reference_tokenizer(tmp_path / "words.txt")
