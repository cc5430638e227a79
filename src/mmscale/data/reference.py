"""The naive reference pipeline, kept as the baseline every data benchmark measures against.

A faithful copy of the source articles' ``MultiModalDataset``: ``PIL.Image.open`` per sample,
``Compose([Resize((224, 224)), ToTensor(), Normalize(ImageNet)])`` in the worker (float32 out,
4x the bytes of uint8), and a tokenizer called once per sample with ``padding='max_length'``.
Two changes only, both needed to run at all: the tokenizer is loaded from the offline
bert-base-uncased vocabulary instead of the hub, and ``.convert('RGB')`` is applied (as in the
second article) so grey/alpha images do not break ``Normalize``. It has no skip handling: a bad
file raises, as in the original.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mmscale.data.normalize import IMAGENET_MEAN, IMAGENET_STD
from mmscale.data.tokenizer import resolve_tokenizer_path
from mmscale.errors import ConfigError


def reference_tokenizer(path=None):
    """``transformers`` tokenizer over the same offline vocabulary as ``load_tokenizer``."""
    # transformers: 0.3 s to import, for the reference design's rows only
    from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerFast

    source = resolve_tokenizer_path(path)
    if (source.parent / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(source.parent), local_files_only=True)
    if source.suffix == ".json":
        return PreTrainedTokenizerFast(tokenizer_file=str(source), pad_token="[PAD]", unk_token="[UNK]",
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    if source.name != "vocab.txt":
        raise ConfigError("data.tokenizer", f"{source}: the reference tokenizer reads a vocabulary "
                          "file named vocab.txt")
    # transformers 5's BertTokenizer(vocab_file=...) ignores the file (5 tokens); from_pretrained
    # reads vocab.txt in both 4.x and 5.x, with BERT's defaults (lower case, Chinese characters split).
    return BertTokenizer.from_pretrained(str(source.parent), local_files_only=True)


class MultiModalDataset(Dataset):
    """The articles' dataset: one image decode + transform + tokenizer call per ``__getitem__``."""

    def __init__(self, image_paths, texts, tokenizer=None, image_size: int = 224, max_length: int = 128):
        self.image_transform = transforms.Compose([
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
            transforms.Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)),
        ])
        self.tokenizer = tokenizer if tokenizer is not None else reference_tokenizer()
        self.image_paths, self.texts, self.max_length = list(image_paths), list(texts), max_length

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, idx: int) -> dict:
        image = self.image_transform(Image.open(self.image_paths[idx]).convert("RGB"))
        encoding = self.tokenizer(self.texts[idx], truncation=True, padding="max_length",
                                  max_length=self.max_length)
        return {
            "pixel_values": image,
            "input_ids": torch.tensor(encoding["input_ids"]),
            "attention_mask": torch.tensor(encoding["attention_mask"]),
        }


def reference_loader(dataset: MultiModalDataset, batch_size: int = 32, num_workers: int = 4) -> DataLoader:
    """The second article's "optimized" DataLoader settings: workers, pinned memory, persistent."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                      persistent_workers=num_workers > 0, shuffle=False)
