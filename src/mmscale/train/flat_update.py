"""The bf16-weights update over flat buffers: three passes where the eager one makes five
(``train.flat_update``).

Counted for ``base`` (198.6 M parameters) under ``train.weights=bf16``, the eager update of
``MasterWeightAdamW`` moves 52 B per parameter: the bf16 gradients copied into fp32 buffers
(6 B), clipping's norm and scale (12 B), torch's fused AdamW (28 B) and the fp32 copies written
back into the bf16 weights (6 B), in ~60 multi-tensor kernels over ~370 tensors of every size.

Here every tensor the update touches lives in one flat buffer, and each parameter is a view into
it, so the update is a few kernels over long contiguous arrays:

1. the bf16 gradients are copied into one flat bf16 buffer (4 B, one multi-tensor kernel);
2. the global norm is read from that buffer in fp32 (2 B, one multi-tensor reduction);
3. one pointwise pass per parameter group reads the bf16 gradient, the fp32 copy and both
   moments, and writes the copy, the moments and the bf16 weight itself, whose storage is
   the flat bf16 buffer (28 B).

34 B per parameter. The arithmetic is AdamW's as torch's fused kernel does it (decoupled decay,
bias corrections from the step count) after ``clip_grad_norm_``'s scaling, compiled by
``torch.compile`` on CUDA; the CPU runs the same function eagerly (tested against the eager
update). The moments are views into their flat buffers but live in the inner
``torch.optim.AdamW``'s state under the usual keys, so checkpoints and the LR scheduler see an
ordinary AdamW, and a checkpoint of either update loads into the other.

Every slot starts at a multiple of 64 elements, so each weight stays aligned as Inductor's and
cuBLAS's kernels want; the gaps stay zero and leave the norm and the update unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from mmscale.train.master_weights import MasterWeightAdamW
from mmscale.train.step_hooks import StepHooks

ALIGN = 64  # elements; 128 B for the bf16 weights, 256 B for the fp32 copies


def flat_adamw(master, exp_avg, exp_avg_sq, grad, weight, step, lr, scale,
               weight_decay: float, beta1: float, beta2: float, eps: float) -> None:
    """One group's update, in place: AdamW on the fp32 copy from the bf16 gradient times the clip
    ``scale``, then the copy rounded into the bf16 weight. ``step``, ``lr`` and ``scale`` are 0-d
    tensors (a step graph replays them; constants would recompile at every schedule change)."""
    g = grad.float() * scale
    master.mul_(1 - lr * weight_decay)
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    step_size = lr / (1 - beta1 ** step)
    denom = exp_avg_sq.sqrt() / (1 - beta2 ** step).sqrt() + eps
    master.sub_(step_size * exp_avg / denom)
    weight.copy_(master)


class FlatMasterAdamW(MasterWeightAdamW):
    """``MasterWeightAdamW`` whose weights, fp32 copies, moments and gradients are flat buffers.

    Needs an inner AdamW built with ``capturable=True`` (a device learning rate), and a gradient
    for every trainable weight at every step: one weight without one would be decayed and
    moved by the flat pass although AdamW skips it, so that step is refused, naming it."""

    def __init__(self, model: nn.Module, build_optimizer, compile_update: bool | None = None):
        """``compile_update``: ``torch.compile`` the pointwise pass (None: on CUDA only)."""
        super().__init__(model, build_optimizer, grad_buffers=False)  # no fp32 gradients in memory
        self.names = {id(p): name for name, p in model.named_parameters()}
        groups = self.optimizer.param_groups
        if not all(isinstance(group["lr"], torch.Tensor) for group in groups):
            raise ValueError("train.flat_update needs AdamW built with capturable=True (a tensor learning rate)")
        index = {id(m): i for i, m in enumerate(self.masters)}
        order = [index[id(m)] for group in groups for m in group["params"]]  # each group contiguous
        offsets, total = {}, 0
        self.group_spans = []
        for group in groups:
            start = total
            for master in group["params"]:
                offsets[index[id(master)]] = total
                total += -(-master.numel() // ALIGN) * ALIGN
            self.group_spans.append((start, total))
        device = self.masters[0].device if self.masters else torch.device("cpu")
        self.master_flat = torch.zeros(total, dtype=torch.float32, device=device)
        self.weight_flat = torch.zeros(total, dtype=self.params[0].dtype if self.params else torch.bfloat16,
                                       device=device)
        self.grad_flat = torch.zeros_like(self.weight_flat)
        self.exp_avg_flat = torch.zeros_like(self.master_flat)
        self.exp_avg_sq_flat = torch.zeros_like(self.master_flat)
        with torch.no_grad():
            for i in order:
                param, master, start = self.params[i], self.masters[i], offsets[i]
                span = slice(start, start + master.numel())
                self.master_flat[span].copy_(master.reshape(-1))
                master.data = self.master_flat[span].view_as(master)
                self.weight_flat[span].copy_(param.reshape(-1))
                param.data = self.weight_flat[span].view_as(param)
        # gradient views in the masters' order, so clip_and_step's copy pairs them with self.params
        self.grad_views = [self.grad_flat[offsets[i]:offsets[i] + m.numel()].view_as(m)
                           for i, m in enumerate(self.masters)]
        self.offsets = offsets
        self._bind_state()
        self.hooks = StepHooks()
        if compile_update is None:
            compile_update = device.type == "cuda"
        self._update = torch.compile(flat_adamw, dynamic=False) if compile_update else flat_adamw

    def _bind_state(self) -> None:
        """Point each copy's AdamW state at its slots of the flat moments, keeping the values held
        (a loaded checkpoint's, or zeros for a copy without state yet)."""
        for i, master in enumerate(self.masters):
            span = slice(self.offsets[i], self.offsets[i] + master.numel())
            state = self.optimizer.state[master]
            for key, flat in (("exp_avg", self.exp_avg_flat), ("exp_avg_sq", self.exp_avg_sq_flat)):
                view = flat[span].view_as(master)
                held = state.get(key)
                if held is None:
                    view.zero_()
                elif held.data_ptr() != view.data_ptr():
                    view.copy_(held)
                state[key] = view
            step = state.get("step")
            if step is None or step.device != master.device:
                state["step"] = torch.zeros((), dtype=torch.float32, device=master.device) if step is None \
                    else step.to(device=master.device, dtype=torch.float32)

    @torch.no_grad()
    def clip_and_step(self, max_norm: float) -> torch.Tensor | None:
        """Clip the global gradient norm to ``max_norm`` (0: no clipping) and step; returns the
        norm before clipping, as ``clip_grad_norm_`` does. Hooks run around the whole update."""
        self.hooks.run_pre_hooks(self)
        missing = [self.names.get(id(p), "?") for p in self.params if p.grad is None]
        if missing:
            raise RuntimeError(f"train.flat_update: {missing[0]} (and {len(missing) - 1} more) got no gradient "
                               "this step; AdamW would skip them, the flat update cannot. Freeze them "
                               "(requires_grad=False) or turn train.flat_update off")
        torch._foreach_copy_(self.grad_views, [p.grad for p in self.params])
        norm = None
        if max_norm > 0:
            # per weight, then over those, as clip_grad_norm_ sums: one fp32 sum over all of the
            # flat buffer would drift (5e-5 relative for 3 M values on the CPU)
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(self.grad_views, 2.0, dtype=torch.float32)))
            scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        else:
            scale = torch.ones((), dtype=torch.float32, device=self.grad_flat.device)
        steps = [self.optimizer.state[m]["step"] for m in self.masters]
        torch._foreach_add_(steps, 1.0)
        for group, (start, end) in zip(self.optimizer.param_groups, self.group_spans):
            if start == end:
                continue
            beta1, beta2 = group["betas"]
            self._update(self.master_flat[start:end], self.exp_avg_flat[start:end],
                         self.exp_avg_sq_flat[start:end], self.grad_flat[start:end],
                         self.weight_flat[start:end], self.optimizer.state[group["params"][0]]["step"],
                         group["lr"], scale, float(group["weight_decay"]), float(beta1), float(beta2),
                         float(group["eps"]))
        self.optimizer._opt_called = True  # what an LR scheduler's wrapper of AdamW.step records
        self.hooks.run_post_hooks(self)
        return norm

    def step(self) -> None:
        self.clip_and_step(0.0)

    def gather_grads(self) -> None:
        raise RuntimeError("train.flat_update clips inside its own update (clip_and_step); "
                           "there are no fp32 gradients to gather")

    def register_step_pre_hook(self, hook):
        return self.hooks.register_step_pre_hook(hook)

    def register_step_post_hook(self, hook):
        return self.hooks.register_step_post_hook(hook)

    def load_state_dict(self, state: dict) -> None:
        """AdamW's state (from either update), then moved into the flat moments."""
        self.optimizer.load_state_dict(state)
        self._bind_state()
