"""AdamW with decay only on weight matrices, and a warmup + cosine learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Matrices decay; biases, norms, embeddings' 1-D scales and the logit scale do not (CLIP/BLIP)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, beta2: float = 0.98,
                    fused: bool = False, capturable: bool = False) -> torch.optim.AdamW:
    """``fused=True`` runs one CUDA kernel for all parameters instead of a loop of small ones.

    ``capturable=True`` makes the step safe to capture in a CUDA graph (``train.step_graph``):
    step counts stay on the device, and the learning rate is a device tensor that the LR
    scheduler fills in place, so a replayed step reads the current rate instead of the one
    the capture saw."""
    if capturable:
        device = next(p.device for p in model.parameters())
        return torch.optim.AdamW(param_groups(model, weight_decay), lr=torch.tensor(lr, device=device),
                                 betas=(0.9, beta2), eps=1e-6, fused=fused or None, capturable=True)
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, beta2),
                             eps=1e-6, fused=fused or None)


def build_train_optimizer(model: nn.Module, cfg):
    """The optimizer a ``TrainConfig`` asks for: AdamW over the model's weights, or under
    ``weights=bf16`` AdamW over their fp32 copies (``MasterWeightAdamW``), either updated by one
    compiled function under ``compile_optimizer`` (``CompiledAdamW``), or the copies in flat
    buffers under ``flat_update`` (``FlatMasterAdamW``). The model must
    already have the weights' dtype (``cast_weights``)."""
    from mmscale.train.compiled_update import CompiledAdamW
    from mmscale.train.flat_update import FlatMasterAdamW
    from mmscale.train.master_weights import MasterWeightAdamW

    own_update = cfg.compile_optimizer or cfg.flat_update

    def build(module: nn.Module) -> torch.optim.AdamW:
        # the compiled and the flat update read a device learning rate and step counts
        # (capturable); they never run the inner AdamW's own kernel, so that one is left unfused
        return build_optimizer(module, cfg.lr, cfg.weight_decay, cfg.beta2,
                               fused=cfg.fused_adamw and not own_update,
                               capturable=cfg.step_graph or own_update)

    if cfg.flat_update:
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            from mmscale.errors import ConfigError

            raise ConfigError("train.flat_update", f"runs in one process; this run has "
                              f"{torch.distributed.get_world_size()} (turn it off under torchrun)")
        return FlatMasterAdamW(model, build)
    optimizer = MasterWeightAdamW(model, build) if cfg.weights == "bf16" else build(model)
    return CompiledAdamW(optimizer) if cfg.compile_optimizer else optimizer


def cast_weights(model: nn.Module, cfg) -> nn.Module:
    """The model in the dtype ``train.weights`` names (before DDP wraps it)."""
    return model.to(torch.bfloat16) if cfg.weights == "bf16" else model


def load_optimizer_state(optimizer, saved: dict) -> None:
    """``optimizer.load_state_dict(saved)``, except that a device learning-rate tensor
    (``capturable=True``) keeps its identity and device: a captured step graph reads that very
    tensor, and a checkpoint loaded to the CPU would otherwise put a CPU copy in its place."""
    live = [group["lr"] for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, lr in zip(optimizer.param_groups, live):
        if isinstance(lr, torch.Tensor):
            lr.fill_(float(group["lr"]))
            group["lr"] = lr


def torch_optimizer(optimizer) -> torch.optim.Optimizer:
    """The ``torch.optim`` object an LR scheduler drives (the inner AdamW of the fp32 copies)."""
    return getattr(optimizer, "optimizer", optimizer)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak LR at optimizer step ``step`` (0-based): linear up, cosine down."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer, warmup_steps: int, total_steps: int, min_ratio: float):
    return torch.optim.lr_scheduler.LambdaLR(
        torch_optimizer(optimizer), lambda step: warmup_cosine(step, warmup_steps, total_steps, min_ratio)
    )
