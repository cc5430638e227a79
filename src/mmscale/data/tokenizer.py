"""BERT-uncased WordPiece tokenization, offline, one call per batch.

The fast (Rust) tokenizer encodes a whole batch in one call from ``collate``; the reference
pipeline calls a tokenizer once per sample with ``padding='max_length'``. Lookup order for the
vocabulary: an explicit path, ``$MMSCALE_TOKENIZER``, then BERT's uncased ``vocab.txt`` shipped
in this package (``bert_uncased/``, Apache-2.0, google-research/bert; see its NOTICE). Nothing is
downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as Backend
from tokenizers.implementations import BertWordPieceTokenizer

from mmscale.errors import ConfigError

ENV_VAR = "MMSCALE_TOKENIZER"


def bundled_tokenizer_dir() -> Path:
    """Directory of the shipped BERT-Base uncased ``vocab.txt`` (30,522 WordPiece tokens)."""
    return Path(__file__).with_name("bert_uncased")


def resolve_tokenizer_path(path: str | os.PathLike | None = None) -> Path:
    """The tokenizer.json or vocab.txt to load, following the lookup order above."""
    for source, candidate in (("argument", path), (f"${ENV_VAR}", os.environ.get(ENV_VAR) or None)):
        if candidate is not None:
            return tokenizer_file(Path(candidate), source)
    return tokenizer_file(bundled_tokenizer_dir(), "mmscale's shipped vocabulary")


def tokenizer_file(p: Path, source: str) -> Path:
    """``p`` itself, or the tokenizer.json / vocab.txt in the directory ``p``; ``source`` names
    where ``p`` came from in the error."""
    if p.is_dir():
        for name in ("tokenizer.json", "vocab.txt"):
            if (p / name).is_file():
                return p / name
        raise ConfigError("data.tokenizer", f"{p} (from {source}) holds neither tokenizer.json nor vocab.txt")
    if p.is_file():
        return p
    raise ConfigError("data.tokenizer", f"{p} (from {source}) does not exist")


class Tokenizer:
    """A ``tokenizers.Tokenizer`` configured for [CLS] text [SEP] + right padding."""

    def __init__(self, backend, source: Path):
        self.backend = backend
        self.source = source
        self.pad_id = backend.token_to_id("[PAD]")
        if self.pad_id is None:
            raise ConfigError("data.tokenizer", f"{source}: vocabulary has no [PAD] token")
        self.vocab_size = backend.get_vocab_size()
        self.cls_id = backend.token_to_id("[CLS]")
        self.sep_id = backend.token_to_id("[SEP]")
        self._mode: tuple[int, bool] | None = None

    def _configure(self, max_len: int, pad_to_longest: bool) -> None:
        if self._mode == (max_len, pad_to_longest):
            return
        self.backend.enable_truncation(max_length=max_len)
        self.backend.enable_padding(pad_id=self.pad_id, pad_token="[PAD]",
                                    length=None if pad_to_longest else max_len)
        self._mode = (max_len, pad_to_longest)

    def encode_batch(self, texts: list[str], max_len: int = 128, pad_to_longest: bool = False):
        """``texts`` -> (input_ids int64 [B, L], attention_mask int64 [B, L]) as torch tensors;
        L = max_len unless ``pad_to_longest``, then the longest caption's length (at most ``max_len``)."""
        # here, not at the top: a serving front end tokenizes with ``encode_arrays`` and starts in
        # ~1 s without torch (~5 s and ~0.8 GiB more with it, on 2 cores)
        import torch

        ids, mask = self.encode_arrays(texts, max_len, pad_to_longest)
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def encode_arrays(self, texts: list[str], max_len: int = 128,
                      pad_to_longest: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``encode_batch`` as numpy arrays."""
        self._configure(max_len, pad_to_longest)
        encodings = self.backend.encode_batch(list(texts))
        if not encodings:
            return np.zeros((0, max_len), dtype=np.int64), np.zeros((0, max_len), dtype=np.int64)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)  # (B, L)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def decode(self, ids) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=True)


def load_tokenizer(path: str | os.PathLike | None = None) -> Tokenizer:
    """Load the BERT-uncased WordPiece tokenizer (see module doc for the lookup order)."""
    source = resolve_tokenizer_path(path)
    try:
        if source.suffix == ".json":
            backend = Backend.from_file(str(source))
        else:
            backend = BertWordPieceTokenizer(str(source), lowercase=True)._tokenizer
    except Exception as exc:  # the tokenizers library raises plain Exception subclasses
        raise ConfigError("data.tokenizer", f"{source}: cannot load ({exc})") from None
    backend.no_truncation()
    backend.no_padding()
    return Tokenizer(backend, source)
