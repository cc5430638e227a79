"""What a training checkpoint holds and how it is written and restored, for 1 process, DDP or FSDP2.

Contents: model and optimizer state, scheduler, grad scaler, every RNG stream, the optimizer step
reached (which fixes the data position: epoch and batch within it), and the model config, so
resuming with a different model fails with a clear message. One process writes ``checkpoint.pt``
(``checkpoint.py``); a torchrun job writes a sharded ``checkpoint/`` folder, each rank its part
(``sharded_checkpoint.py``). A run folder keeps one of the two: a save removes the other. Either
resumes at any world size.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

from mmscale.errors import CheckpointError
from mmscale.train import sharded_checkpoint as sharded
from mmscale.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mmscale.train.optim import load_optimizer_state, torch_optimizer
from mmscale.train.step import unwrap

SINGLE_FILE = "checkpoint.pt"


def _is_sharded(model) -> bool:
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def find_checkpoint(out_dir: Path) -> Path | None:
    """The run folder's checkpoint: the newest sharded step folder, or ``checkpoint.pt``."""
    step_dir = sharded.latest_step_dir(Path(out_dir) / sharded.SHARDED_DIR)
    if step_dir is not None:
        return step_dir
    single = Path(out_dir) / SINGLE_FILE
    return single if single.is_file() else None


def save_training_state(out_dir, step, job, model, optimizer, scheduler, scaler, env) -> None:
    out_dir = Path(out_dir)
    train_state = {
        "step": step,
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": rng_state(),
        "model_config": dataclasses.asdict(job.model),
        "batch_size": job.train.batch_size,
    }
    if env.active:
        sharded.save_sharded(out_dir / sharded.SHARDED_DIR, step, named_state(model, optimizer), train_state, env)
        if env.is_main:
            (out_dir / SINGLE_FILE).unlink(missing_ok=True)
        return
    state = {"model": optimizer.master_state(unwrap(model)) if hasattr(optimizer, "master_state")
             else unwrap(model).state_dict(), "optimizer": optimizer.state_dict()}
    save_checkpoint(out_dir / SINGLE_FILE, {**train_state, **state})
    shutil.rmtree(out_dir / sharded.SHARDED_DIR, ignore_errors=True)


def restore_training_state(path, job, model, optimizer, scheduler, scaler) -> int:
    """Load everything in place from ``find_checkpoint``'s answer; returns the optimizer step to continue from."""
    path = Path(path)
    if path.is_dir():
        state = sharded.read_train_state(path)
        _check_same_job(path, state, job)
        arrays = named_state(model, optimizer, for_load=True)
        saved = sharded.saved_keys(path)
        moments = arrays["optimizer"]["state"]
        for name in [n for n in moments if f"optimizer.state.{n}.step" not in saved]:
            del moments[name]  # a weight that never had a gradient has no AdamW state to restore
        sharded.load_arrays(path, arrays)
        _set_named_state(model, optimizer, arrays)
    else:
        state = load_checkpoint(path)
        _check_same_job(path, state, job)
        if _is_sharded(model):  # FSDP2 from one process's checkpoint: each rank keeps its shard
            set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                           options=StateDictOptions(full_state_dict=True))
        else:
            unwrap(model).load_state_dict(state["model"])
            load_optimizer_state(optimizer, state["optimizer"])
            if hasattr(optimizer, "load_master_state"):  # the fp32 copies, before bf16 rounding
                optimizer.load_master_state(unwrap(model), state["model"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return int(state["step"])


def _check_same_job(path, state: dict, job) -> None:
    saved_cfg = state.get("model_config", {})
    current = dataclasses.asdict(job.model)
    changed = sorted(k for k in current if saved_cfg.get(k) != current[k])
    if changed:
        raise CheckpointError(path, f"written with a different model config (model.{changed[0]} differs)")
    if state.get("batch_size") != job.train.batch_size:
        raise CheckpointError(path, f"written with train.batch_size={state.get('batch_size')}, "
                              f"now {job.train.batch_size}: the data position would not match")


def named_state(model, optimizer, for_load: bool = False) -> dict:
    """``{"model", "optimizer"}`` keyed by parameter name, in the layout of torch's ``get_state_dict``
    whether sharded or not, so that DCP reshards between FSDP2, DDP and one process. ``for_load``:
    the optimizer's moments are made first (AdamW makes them at its first step), to be filled."""
    if _is_sharded(model):
        model_state, optim_state = get_state_dict(model, optimizer)
        return {"model": model_state, "optimizer": optim_state}
    if for_load:
        _make_optimizer_state(model, optimizer)
    model_state = optimizer.master_state(unwrap(model)) if hasattr(optimizer, "master_state") \
        else unwrap(model).state_dict()
    names = _optimizer_param_names(model, optimizer)
    saved = optimizer.state_dict()
    return {"model": model_state, "optimizer": {
        "state": {names[index]: value for index, value in saved["state"].items()},
        "param_groups": [{**group, "params": [names[i] for i in group["params"]]} for group in saved["param_groups"]],
    }}


def _set_named_state(model, optimizer, arrays: dict) -> None:
    if _is_sharded(model):
        set_state_dict(model, optimizer, model_state_dict=arrays["model"], optim_state_dict=arrays["optimizer"])
        return
    unwrap(model).load_state_dict(arrays["model"])
    index = {name: i for i, name in enumerate(_optimizer_param_names(model, optimizer))}
    named = arrays["optimizer"]
    load_optimizer_state(optimizer, {
        "state": {index[name]: value for name, value in named["state"].items()},
        "param_groups": [{**group, "params": [index[n] for n in group["params"]]} for group in named["param_groups"]],
    })
    if hasattr(optimizer, "load_master_state"):
        optimizer.load_master_state(unwrap(model), arrays["model"])


def _optimizer_param_names(model, optimizer) -> list[str]:
    """The model's name of each optimizer parameter, in ``state_dict`` index order (the fp32 copy
    of a bf16 weight takes the weight's name)."""
    name_of = {id(p): name for name, p in unwrap(model).named_parameters()}
    if hasattr(optimizer, "masters"):
        name_of = {id(master): name_of[id(p)] for p, master in zip(optimizer.params, optimizer.masters)}
    return [name_of[id(p)] for group in torch_optimizer(optimizer).param_groups for p in group["params"]]


@torch.no_grad()
def _make_optimizer_state(model, optimizer) -> None:
    """One AdamW step at learning rate 0 on zero gradients: the moments exist, the weights stay."""
    inner = torch_optimizer(optimizer)
    if inner.state:
        return
    for param in model.parameters():
        if param.requires_grad:
            param.grad = torch.zeros_like(param)
    rates = [group["lr"] for group in inner.param_groups]
    for group in inner.param_groups:
        group["lr"] = 0.0
    optimizer.step()
    for group, rate in zip(inner.param_groups, rates):
        group["lr"] = rate
    optimizer.zero_grad(set_to_none=True)
