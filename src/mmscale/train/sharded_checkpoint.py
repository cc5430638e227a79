"""Sharded checkpoints for torchrun jobs: torch.distributed.checkpoint (DCP), each rank writes its part.

Layout: ``OUT/checkpoint/step-000012/``: DCP's ``.metadata`` and one file per rank (model and
optimizer; FSDP2 shards as they lie, DDP's replicas written once, spread over the ranks), and
``train_state.pt`` from rank 0 (step, schedule, scaler, RNG, model config). Every rank writes into
a hidden ``.step-000012.tmp`` folder; once all have (a barrier), rank 0 renames it, which is
atomic, and then removes older steps: a crash mid-save leaves the previous step whole. DCP
reshards on load: a checkpoint of N ranks loads at M, or in one process (resume, serving).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp

from mmscale.errors import CheckpointError
from mmscale.train import distributed as dist_utils

SHARDED_DIR = "checkpoint"  # under train.out_dir, beside the single-process checkpoint.pt
TRAIN_STATE = "train_state.pt"
PREFIX = "step-"


def latest_step_dir(root: Path) -> Path | None:
    """The newest complete step folder under ``root`` (unfinished ``.tmp`` folders are not)."""
    steps = sorted(p for p in Path(root).glob(f"{PREFIX}*") if p.is_dir() and (p / TRAIN_STATE).is_file())
    return steps[-1] if steps else None


def is_sharded_checkpoint(path: Path) -> bool:
    """A ``checkpoint/`` folder with a complete step, or one step folder."""
    path = Path(path)
    return path.is_dir() and ((path / TRAIN_STATE).is_file() or latest_step_dir(path) is not None)


def resolve_step_dir(path: Path) -> Path:
    """A step folder from either a step folder or the ``checkpoint/`` folder above them."""
    path = Path(path)
    if (path / TRAIN_STATE).is_file():
        return path
    found = latest_step_dir(path)
    if found is None:
        raise CheckpointError(path, "holds no complete sharded checkpoint (no step-* folder with train_state.pt)")
    return found


def save_sharded(root: Path, step: int, arrays: dict, train_state: dict, env) -> Path:
    """Every rank calls this with its ``arrays`` (model and optimizer state, sharded or not)."""
    root = Path(root)
    final = root / f"{PREFIX}{step:06d}"
    tmp = root / f".{final.name}.tmp"
    if env.is_main:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a crash mid-save
        tmp.mkdir(parents=True)
    dist_utils.barrier(env)
    with _one_process_quietly():
        dcp.save(arrays, checkpoint_id=str(tmp), no_dist=not env.active)
    if env.is_main:
        with open(tmp / TRAIN_STATE, "wb") as handle:
            torch.save(train_state, handle)
            handle.flush()
            os.fsync(handle.fileno())
    dist_utils.barrier(env)  # every rank's part is on disk
    if env.is_main:
        shutil.rmtree(final, ignore_errors=True)  # the same step saved again (a run that ends at a checkpoint step)
        os.replace(tmp, final)
        for older in [*root.glob(f"{PREFIX}*"), *root.glob(f".{PREFIX}*.tmp")]:  # earlier steps, crashed saves
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
    dist_utils.barrier(env)
    return final


def saved_keys(step_dir: Path) -> set[str]:
    """The flattened names DCP saved (``optimizer.state.<param>.exp_avg``, ...)."""
    return set(dcp.FileSystemReader(str(step_dir)).read_metadata().state_dict_metadata)


def load_arrays(step_dir: Path, template: dict) -> None:
    """Fill ``template`` (state dicts of the right shapes, sharded or not) from ``step_dir`` in place."""
    try:
        with _one_process_quietly():
            dcp.load(template, checkpoint_id=str(step_dir), no_dist=not torch.distributed.is_initialized())
    except Exception as exc:  # DCP's reader: missing files, keys or shapes that differ
        raise CheckpointError(step_dir, f"cannot be read as this run's model and optimizer "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def read_train_state(step_dir: Path) -> dict:
    return torch.load(Path(step_dir) / TRAIN_STATE, map_location="cpu", weights_only=True)


def load_weights(path: Path) -> dict:
    """``{"model", "model_config", "step"}`` of a sharded checkpoint, the weights whole, in one
    process without the model or the optimizer (serving): shapes and dtypes come from DCP's metadata."""
    step_dir = resolve_step_dir(path)
    metadata = dcp.FileSystemReader(str(step_dir)).read_metadata().state_dict_metadata
    weights = {key.removeprefix("model."): torch.empty(tuple(meta.size), dtype=meta.properties.dtype)
               for key, meta in metadata.items() if key.startswith("model.") and hasattr(meta, "size")}
    load_arrays(step_dir, {"model": weights})
    state = read_train_state(step_dir)
    return {"model": weights, "model_config": state["model_config"], "step": state["step"]}


@contextlib.contextmanager
def _one_process_quietly():
    """DCP warns on every call without a process group; one process (resume, serving) is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield
