"""bf16 weights for compute, fp32 master copies for the optimizer (``train.weights=bf16``).

Under bf16 autocast the weights stay fp32: every forward casts each weight to bf16, LayerNorm
and the residual stream run in fp32, and activations between blocks are fp32 tensors, twice
the bytes of bf16. The elementwise kernels around the matmuls are memory-bound, so those bytes
are step time. Here the model itself is bf16 (weights, activations, residual stream; the norm
and softmax kernels still accumulate in fp32 internally), while AdamW updates fp32 copies, so
small updates are not rounded away: after each step the copies are written back to the bf16
weights. This is the split Megatron-LM and DeepSpeed's bf16 optimizers make.

The optimizer-facing surface is what ``TrainStep`` and the LR scheduler use: ``step``,
``zero_grad``, ``param_groups``, ``state_dict``; ``gather_grads`` copies the bf16 gradients
into the fp32 copies' gradients before clipping.
"""

from __future__ import annotations

import torch
from torch import nn


class MasterWeightAdamW:
    """AdamW whose parameters are fp32 copies of a bf16 model's parameters."""

    def __init__(self, model: nn.Module, build_optimizer, grad_buffers: bool = True):
        """``build_optimizer(module)`` builds the inner optimizer over ``module.parameters()``,
        so its parameter groups (decay or not) are chosen by the same rule as for the model.
        ``grad_buffers=False``: no fp32 gradient buffers up front (an update that reads the bf16
        gradients itself needs none; a first ``gather_grads`` would make them)."""
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.masters = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        # fp32 gradients, reused every step; None where a compiled update needs none (it reads the
        # bf16 gradients itself), and then made at a first gather
        self.grad_buffers: list[torch.Tensor] | None = [torch.zeros_like(m) for m in self.masters] \
            if grad_buffers else None
        self.gathered = False
        self.optimizer = build_optimizer(_MasterModule(model, self.params, self.masters))

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    @torch.no_grad()
    def gather_grads(self) -> None:
        """fp32 gradients from the bf16 ones. A weight without a gradient leaves its copy without
        one too, so AdamW skips it (no decay, no moment update), as it would the weight itself."""
        if self.grad_buffers is None:
            self.grad_buffers = [torch.zeros_like(m) for m in self.masters]
        present = [i for i, p in enumerate(self.params) if p.grad is not None]
        for master in self.masters:
            master.grad = None
        for i in present:
            self.masters[i].grad = self.grad_buffers[i]
        if present:
            torch._foreach_copy_([self.grad_buffers[i] for i in present], [self.params[i].grad for i in present])
        self.gathered = True

    @torch.no_grad()
    def step(self) -> None:
        if not self.gathered:  # TrainStep gathers before clipping; a bare step gathers here
            self.gather_grads()
        self.optimizer.step()
        torch._foreach_copy_(self.params, self.masters)
        self.gathered = False

    def register_step_pre_hook(self, hook):
        """Hooks on the inner AdamW's step (stage timers): they see the fp32 copies' step."""
        return self.optimizer.register_step_pre_hook(hook)

    def register_step_post_hook(self, hook):
        return self.optimizer.register_step_post_hook(hook)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            param.grad = None if set_to_none else (param.grad.zero_() if param.grad is not None else None)
        self.gathered = False

    def state_dict(self) -> dict:
        """AdamW's state; the fp32 copies themselves travel as the model's state (``master_state``)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)

    def master_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with the fp32 copies in place of its bf16 trainable weights:
        what a checkpoint stores, so that serving and evaluation load full-precision weights."""
        by_id = {id(p): m for p, m in zip(self.params, self.masters)}
        state = model.state_dict(keep_vars=True)
        return {name: by_id.get(id(value), value).detach() for name, value in state.items()}

    @torch.no_grad()
    def load_master_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Restore the fp32 copies from a ``master_state`` (the bf16 weights were loaded from it
        rounded), then write them to the weights again."""
        index = {id(p): i for i, p in enumerate(self.params)}
        for name, value in model.state_dict(keep_vars=True).items():
            if id(value) in index:
                self.masters[index[id(value)]].copy_(state[name])
        torch._foreach_copy_(self.params, self.masters)


class _MasterModule(nn.Module):
    """Presents the fp32 copies under the model's parameter names and shapes, for group rules."""

    def __init__(self, model: nn.Module, params, masters):
        super().__init__()
        by_id = {id(p): m for p, m in zip(params, masters)}
        self._named = [(name, by_id[id(p)]) for name, p in model.named_parameters() if id(p) in by_id]

    def named_parameters(self, *args, **kwargs):
        return iter(self._named)

    def parameters(self, *args, **kwargs):
        return iter(m for _, m in self._named)
