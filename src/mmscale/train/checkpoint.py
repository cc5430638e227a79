"""Atomic checkpoints: write to a temp file in the same directory, fsync, then ``os.replace``.

A crash (even ``kill -9``) mid-write leaves the previous checkpoint intact, because the rename is
atomic on POSIX. A file that is still truncated or corrupt (copied half-way, disk full) is
reported as ``CheckpointError`` with the path and what to do, never as a zip-reader traceback.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from mmscale.errors import CheckpointError

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    payload = {"format_version": FORMAT_VERSION, **state}
    with open(tmp, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "not found (mmscale train writes checkpoint.pt in train.out_dir: check the "
                                    "path, or train without --resume)")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "empty file (truncated write); delete it to start over")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip reader / unpickler errors of a damaged file
        raise CheckpointError(
            path, f"truncated or corrupt ({type(exc).__name__}: {_first_words(exc)}); "
            "delete it or restore an earlier copy"
        ) from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(path, "not an mmscale training checkpoint (format_version missing)")
    return state


def _first_words(exc: Exception, limit: int = 160) -> str:
    """The gist of a loader error for a one-line message: its first sentence (torch's run on for
    several), cut at a word boundary, never mid-word, when still longer than ``limit``."""
    message = str(exc)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    end = text.find(". ")
    if end != -1:
        text = text[: end + 1]
    marker = "WeightsUnpickler error:"  # torch puts the actual reason after its advice
    if marker in message:
        reason = next((line.strip() for line in message.split(marker, 1)[1].splitlines() if line.strip()), "")
        text = f"{text.rstrip('.')}: {reason}" if reason else text
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > 0 else limit].rstrip(" ,;:") + " ..."
    return text or "no detail"


def rng_state() -> dict:
    """Every random stream the loop draws from, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
