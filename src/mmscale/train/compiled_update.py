"""Gradient clipping and AdamW as one compiled function (``train.compile_optimizer``).

Counted for ``base`` (198.6 M parameters) under ``train.weights=bf16``, the eager update makes
five passes over the parameters: copy the bf16 gradients into fp32 buffers (6 B/parameter),
clipping's norm and scale (12 B), the fused AdamW kernel (28 B) and the write-back of the fp32
copies into the bf16 weights (6 B): 52 B/parameter, 10.3 GB a step. The same arithmetic needs
only two: the norm, read from the bf16 gradients (2 B), and one elementwise pass that reads the
bf16 gradient, the fp32 copy and both moments and writes the copy, the moments and the bf16
weight (28 B): 6.0 GB. Inductor makes those two passes when the whole update is one traced
function: the fp32 gradient is then a value inside a kernel, never a tensor in memory.

The math is torch's own: ``clip_grad_norm_``'s (the global L2 norm, ``max_norm / (norm +
1e-6)`` clamped to 1) and the functional ``torch.optim.adamw.adamw`` (foreach, capturable),
traced by ``torch.compile``. The state lives in the wrapped ``torch.optim.AdamW`` under its
usual keys, so checkpoints, ``state_dict`` and the LR scheduler see an ordinary AdamW.
"""

from __future__ import annotations

import torch
from torch.optim.adamw import adamw

from mmscale.train.optim import torch_optimizer
from mmscale.train.step_hooks import StepHooks


def _clip_and_adamw(groups, compute_params, masters, max_norm: float):
    """One update. ``groups``: per parameter group (params, grads, exp_avgs, exp_avg_sqs, steps,
    lr tensor, weight decay, betas, eps); grads may be bf16, the parameters fp32. Returns the
    total norm before clipping (None without clipping: the norm is then not computed)."""
    norm = scale = None
    if max_norm > 0:
        grads_all = [g for group in groups for g in group[1]]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads_all]))
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for params, grads, exp_avgs, exp_avg_sqs, steps, lr, weight_decay, (beta1, beta2), eps in groups:
        grads32 = [g.float() * scale if scale is not None else g.float() for g in grads]
        adamw(params, grads32, exp_avgs, exp_avg_sqs, [], steps, foreach=True, capturable=True, amsgrad=False,
              beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=False)
    if compute_params:
        torch._foreach_copy_(compute_params, masters)
    return norm


class CompiledAdamW:
    """Wraps an AdamW (or a ``MasterWeightAdamW``) whose inner ``torch.optim.AdamW`` was built
    with ``capturable=True`` (a device learning-rate tensor, so the schedule never recompiles);
    everything but the update itself is the wrapped optimizer's."""

    def __init__(self, optimizer, inductor_options: dict | None = None):
        """``inductor_options``: Inductor settings for this function's compile only."""
        self.wrapped = optimizer
        inner = torch_optimizer(optimizer)
        if not all(isinstance(group["lr"], torch.Tensor) for group in inner.param_groups):
            raise ValueError("train.compile_optimizer needs AdamW built with capturable=True (a tensor learning rate)")
        if any(group.get("amsgrad") or group.get("maximize") for group in inner.param_groups):
            raise ValueError("train.compile_optimizer supports AdamW without amsgrad or maximize")
        masters = getattr(optimizer, "masters", None)
        # where each updated tensor's gradient lives: the bf16 weight's, or the parameter's own
        self._grad_source = {id(m): p for p, m in zip(optimizer.params, masters)} if masters is not None else {}
        self.hooks = StepHooks()
        if masters is not None:
            optimizer.grad_buffers = None  # the fp32 gradient buffers (0.8 GB for base) are not used
        # loop reordering during fusion hits an assertion on CUDA in torch 2.11 for this graph
        options = {"loop_ordering_after_fusion": False, **(inductor_options or {})}
        self._update = torch.compile(_clip_and_adamw, dynamic=False, options=options)

    def __getattr__(self, name):  # param_groups, state, state_dict, masters, master_state, ...
        if name == "wrapped":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The ``torch.optim.AdamW`` that holds the state: what the LR scheduler drives."""
        return torch_optimizer(self.wrapped)

    def _group_lists(self):
        inner = self.optimizer
        groups, compute, masters = [], [], []
        for group in inner.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            for param in group["params"]:
                source = self._grad_source.get(id(param), param)
                if source.grad is None:  # no gradient: AdamW skips it, as the eager one does
                    continue
                state = inner.state[param]
                if not state:  # the keys and dtypes torch's AdamW(capturable=True) creates
                    state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                params.append(param)
                grads.append(source.grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
                if source is not param:
                    compute.append(source)
                    masters.append(param)
            if params:
                groups.append((params, grads, exp_avgs, exp_avg_sqs, steps, group["lr"], group["weight_decay"],
                               tuple(group["betas"]), group["eps"]))
        return groups, compute, masters

    @torch.no_grad()
    def clip_and_step(self, max_norm: float) -> torch.Tensor | None:
        """Clip the global gradient norm to ``max_norm`` (0: no clipping) and step; returns the
        norm before clipping, as ``clip_grad_norm_`` does (None when nothing had a gradient).
        Step hooks run around the whole update, clipping included."""
        self.hooks.run_pre_hooks(self)
        groups, compute, masters = self._group_lists()
        norm = self._update(groups, compute, masters, float(max_norm)) if groups else None
        self.optimizer._opt_called = True  # what an LR scheduler's wrapper of AdamW.step records
        self.hooks.run_post_hooks(self)
        return norm

    def register_step_pre_hook(self, hook):
        """Like ``torch.optim.Optimizer``'s (the stage timers of ``bench pipeline`` use it): the
        inner AdamW's own hooks would never run, as its ``step`` is never called."""
        return self.hooks.register_step_pre_hook(hook)

    def register_step_post_hook(self, hook):
        return self.hooks.register_step_post_hook(hook)

    def step(self) -> None:
        self.clip_and_step(0.0)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.wrapped.zero_grad(set_to_none=set_to_none)
