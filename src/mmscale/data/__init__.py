"""Image-caption data: readers, columnar index, decode, tokenizer, loader, skip accounting, synthesis.

Entry points (imported lazily so that ``import mmscale.data.skips`` stays light):
``open_dataset``, ``build_loader``, ``load_tokenizer``, ``synthesize``, ``check_dataset``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataConfig": "mmscale.data.config",
    "SkipCounter": "mmscale.data.skips",
    "SkipReason": "mmscale.data.skips",
    "Batch": "mmscale.data.batch",
    "ManifestIndex": "mmscale.data.index",
    "read_manifest": "mmscale.data.readers",
    "open_dataset": "mmscale.data.loader",
    "build_loader": "mmscale.data.loader",
    "load_tokenizer": "mmscale.data.tokenizer",
    "to_model_input": "mmscale.data.normalize",
    "synthesize": "mmscale.data.synth",
    "check_dataset": "mmscale.data.check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmscale.data' has no attribute {name!r}")
