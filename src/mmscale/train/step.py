"""One optimizer step on a device batch, reusable by the training loop and the benchmarks.

``TrainStep`` owns what happens between "a batch is on the device" and "the weights moved":
micro-batch split, autocast, backward (with a scaler for fp16), gradient sync only on the last
micro-batch, clipping, the optimizer and the scheduler. It never synchronizes with the device:
losses come back as device tensors; the caller decides when to read them.
"""

from __future__ import annotations

import contextlib

import torch
import torch._inductor.config as inductor_config
from torch import nn

from mmscale.train.precision import Precision


def inductor_options() -> dict:
    """Inductor settings of our compiled step: the LayerNorm backward's weight and bias gradients as
    column reductions, not row partial sums that eager sums finish (about 210 fewer kernels a step)."""
    return {"triton.mix_order_reduction": False} if hasattr(inductor_config.triton, "mix_order_reduction") else {}


def unwrap(model: nn.Module) -> nn.Module:
    """The MultimodalModel under DDP (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if inner is None:
            return model
        model = inner


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute encoder blocks in backward, through each library's own switch."""
    model = unwrap(model)
    model.image_encoder.backbone.set_grad_checkpointing(True)  # timm
    bert = model.text_encoder.bert  # transformers renamed the switch in 5.x; older names still work
    bert.config.use_cache = False  # an encoder keeps no KV cache; said here, transformers stays quiet
    enable = getattr(bert, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        bert.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def grad_sync(model: nn.Module, enabled: bool):
    """Context that skips the gradient all-reduce on non-final micro-batches (DDP and FSDP2)."""
    if enabled:
        return contextlib.nullcontext()
    if hasattr(model, "no_sync"):  # DDP
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2 (fully_shard)
        model.set_requires_gradient_sync(False)
        return _ReenableSync(model)
    return contextlib.nullcontext()


class _ReenableSync(contextlib.AbstractContextManager):
    def __init__(self, model):
        self.model = model

    def __exit__(self, *exc):
        self.model.set_requires_gradient_sync(True)
        return False


class TrainStep:
    """Call with device tensors (pixels [B,3,S,S] float, ids [B,L], mask [B,L]); B = per-process batch."""

    def __init__(self, model: nn.Module, optimizer, scheduler=None, precision: Precision | str = "fp32",
                 compile: bool = False, grad_accum: int = 1, checkpointing: bool = False,
                 grad_clip: float = 0.0, compile_dynamic: bool | None = None):
        if isinstance(precision, str):
            device = next(unwrap(model).parameters()).device
            precision = Precision.resolve(precision, device)
        if checkpointing:
            enable_activation_checkpointing(model)
        self.model = model  # the module that owns no_sync / gradient sync
        # compile_dynamic=None (torch's default): a second batch size, such as a batch shortened
        # by bad samples, turns the batch dimension symbolic once, instead of one recompile per
        # size. Benchmarks that run a few fixed sizes pass False: one static graph per size.
        self.forward = torch.compile(model, dynamic=compile_dynamic, options=inductor_options()) if compile else model
        self.optimizer, self.scheduler = optimizer, scheduler
        self.precision, self.grad_accum, self.grad_clip = precision, grad_accum, grad_clip
        self.scaler = precision.grad_scaler()
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.clip_params = getattr(optimizer, "masters", self.params)

    def __call__(self, pixels, ids, mask) -> dict[str, torch.Tensor]:
        totals = self.update(pixels, ids, mask)
        if self.scheduler is not None:
            self.scheduler.step()
        return totals

    def update(self, pixels, ids, mask) -> dict[str, torch.Tensor]:
        """Everything of a step but the LR schedule's host-side advance: the part that only
        launches device work, so that a CUDA graph can capture it (``train.step_graph``)."""
        self.model.train()
        totals: dict[str, torch.Tensor] = {}
        # a batch shortened by bad samples splits into uneven micro-batches, and into fewer only when
        # it holds fewer samples than grad_accum (every process of a torchrun job runs as many: each
        # gathers ITC rows once per micro-batch); the last one still syncs gradients, and each
        # weighs by its share of the samples
        parts = min(self.grad_accum, pixels.shape[0])
        # one part is the batch itself, not a view of it: a caller's dynamic mark on the batch dimension stays on it
        chunks = [(pixels, ids, mask)] if parts == 1 else list(
            zip(pixels.tensor_split(parts), ids.tensor_split(parts), mask.tensor_split(parts)))
        learned = False
        for index, (px, tok, msk) in enumerate(chunks):
            share = px.shape[0] / pixels.shape[0]
            with grad_sync(self.model, index == len(chunks) - 1):
                with self.precision.autocast():
                    out = self.forward(px, tok, msk)
                loss = out["loss"] * share
                # a micro-batch of one sample has no pair to contrast and no negative to match:
                # compiled, its loss is a constant without a graph, and there is nothing to learn
                if loss.requires_grad:
                    (self.scaler.scale(loss) if self.scaler else loss).backward()
                    learned = True
            for key, value in out.items():
                totals[key] = totals.get(key, 0) + value.detach().float() * share
        if not learned:
            self.optimizer.zero_grad(set_to_none=True)
            return totals
        flat_update = getattr(self.optimizer, "clip_and_step", None)  # train.flat_update
        if flat_update is not None and self.scaler is None:
            norm = flat_update(self.grad_clip)
            if norm is not None:
                totals["grad_norm"] = norm
            self.optimizer.zero_grad(set_to_none=True)
            return totals
        gather = getattr(self.optimizer, "gather_grads", None)
        if gather is not None:  # bf16 weights: clip and step the fp32 copies (train.master_weights)
            gather()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip:
            totals["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.clip_params, self.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return totals
