"""What a training checkpoint holds and how it is gathered and restored, for 1 process, DDP or FSDP2.

Contents: model and optimizer state (full, unsharded), scheduler, grad scaler, every RNG stream,
the optimizer step reached (which fixes the data position: epoch and batch within it), and the
model config, so resuming with a different model fails with a clear message.
"""

from __future__ import annotations

import dataclasses

from mmscale.errors import CheckpointError
from mmscale.train import distributed as dist_utils
from mmscale.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mmscale.train.optim import load_optimizer_state
from mmscale.train.step import unwrap


def _is_sharded(model) -> bool:
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def gather_state(model, optimizer) -> tuple[dict, dict]:
    if _is_sharded(model):  # FSDP2: every rank takes part, rank 0 receives the full tensors
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if hasattr(optimizer, "master_state"):  # bf16 weights: the fp32 copies are the model's weights
        return optimizer.master_state(unwrap(model)), optimizer.state_dict()
    return unwrap(model).state_dict(), optimizer.state_dict()


def save_training_state(path, step, job, model, optimizer, scheduler, scaler, env) -> None:
    model_state, optim_state = gather_state(model, optimizer)
    if env.is_main:
        save_checkpoint(path, {
            "step": step,
            "model": model_state,
            "optimizer": optim_state,
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "rng": rng_state(),
            "model_config": dataclasses.asdict(job.model),
            "batch_size": job.train.batch_size,
        })
    dist_utils.barrier(env)


def restore_training_state(path, job, model, optimizer, scheduler, scaler) -> int:
    """Load everything in place; returns the optimizer step to continue from."""
    state = load_checkpoint(path)
    saved_cfg = state.get("model_config", {})
    current = dataclasses.asdict(job.model)
    changed = sorted(k for k in current if saved_cfg.get(k) != current[k])
    if changed:
        raise CheckpointError(path, f"written with a different model config (model.{changed[0]} differs)")
    if state.get("batch_size") != job.train.batch_size:
        raise CheckpointError(path, f"written with train.batch_size={state.get('batch_size')}, "
                              f"now {job.train.batch_size}: the data position would not match")
    if _is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

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
