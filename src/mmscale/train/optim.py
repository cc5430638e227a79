"""AdamW with decay only on weight matrices, and a warmup + cosine learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from mmscale.train.flat_update import FlatMasterAdamW
from mmscale.train.master_weights import MasterWeightAdamW

BETA2 = 0.98  # AdamW's second-moment decay: the CLIP/BLIP choice for stable contrastive training


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Matrices decay; biases, norms, embeddings' 1-D scales and the logit scale do not (CLIP/BLIP)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, beta2: float = BETA2,
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


def build_train_optimizer(model: nn.Module, cfg, runtime):
    """The optimizer a run asks for: fused AdamW over the model's weights; under bf16 weights
    AdamW over their fp32 copies (``MasterWeightAdamW``), or the copies in flat buffers under
    ``flat_update`` (``FlatMasterAdamW``). The model must already have the weights' dtype."""

    def build(module: nn.Module) -> torch.optim.AdamW:
        # the flat update reads a device learning rate and step counts (capturable) and never
        # runs the inner AdamW's own kernel, so that one is left unfused
        return build_optimizer(module, cfg.lr, cfg.weight_decay, fused=not runtime.flat_update,
                               capturable=runtime.step_graph or runtime.flat_update)

    if runtime.flat_update:
        return FlatMasterAdamW(model, build)
    return MasterWeightAdamW(model, build) if runtime.precision.weights == "bf16" else build(model)


def cast_weights(model: nn.Module, runtime) -> nn.Module:
    """The model in the dtype the run's weights have (before DDP wraps it)."""
    return model.to(torch.bfloat16) if runtime.precision.weights == "bf16" else model


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
