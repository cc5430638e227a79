"""The whole training step as one CUDA graph: forward, backward, clipping and AdamW replayed.

Why: profiled on one H200 (``mmscale bench train-step --kernels``), the compiled ``base`` step
with bf16 weights keeps the GPU busy 57.7 ms of a 63.9 ms step; the rest is the host launching
~1,500 kernels and the optimizer's foreach loops one by one. ``compile(mode="reduce-overhead")``
graphs only the model's forward and backward and left 4.4 ms of the gap. Captured whole, a step
is one launch, and the host is free until the next batch (Megatron-LM's full-iteration CUDA
graph does the same).

What capture needs, and what this class does about it:
- static inputs: each batch is copied into the tensors the graph was captured with; a batch of
  another shape (shortened by bad samples) runs the ordinary step instead, uncaptured;
- no host work inside: the LR schedule advances outside the graph, into the optimizer's device
  learning-rate tensor (``build_optimizer(capturable=True)``);
- warm-up before capture on a side stream (compilation, cuBLAS handles, AdamW's state), as
  torch's CUDA-graph notes ask; those warm-up steps are real training steps;
- outputs are the graph's own tensors, overwritten by the next replay: callers get copies;
- capture is thread-local: the GPU input path decodes on its own threads and streams meanwhile,
  which a process-wide capture would refuse;
- a capture that fails anyway is logged once, and training goes on uncaptured: a capture
  launches no kernels, so the step it held is simply run again the ordinary way.

Single process only: DDP's all-reduce inside a capture and gradient accumulation are refused
by ``check_graphable``, which names what stands in the way.
"""

from __future__ import annotations

import logging

import torch

from mmscale.train.step import TrainStep


log = logging.getLogger(__name__)


class GraphUnsupported(ValueError):
    """A training setup whose step cannot be captured; the message names the reason."""


def check_graphable(step: TrainStep, device: torch.device, distributed: bool = False) -> None:
    """Raise ``GraphUnsupported`` unless ``step`` can be captured on ``device``."""
    if device.type != "cuda":
        raise GraphUnsupported("needs a CUDA device (CUDA graphs)")
    if distributed:
        raise GraphUnsupported("is single-process only (the gradient all-reduce is not captured)")
    if step.grad_accum != 1:
        raise GraphUnsupported("needs grad_accum=1 (micro-batch splits change with the batch)")
    if step.scaler is not None:
        raise GraphUnsupported("does not take fp16's gradient scaler (it checks for inf on the host)")
    groups = getattr(step.optimizer, "param_groups", [])
    if not groups or not all(group.get("capturable") for group in groups):
        raise GraphUnsupported("needs an optimizer built with capturable=True")


class GraphedTrainStep:
    """Call like ``TrainStep``: (pixels, ids, mask) device tensors in, device losses out."""

    def __init__(self, step: TrainStep, warmup_steps: int = 3, graph_factory=None):
        """``graph_factory`` defaults to ``torch.cuda.CUDAGraph``; a test passes a stand-in with
        ``record(fn) -> outputs`` and ``replay()``, to check the bookkeeping without a GPU."""
        self.step = step
        self.warmup_left = warmup_steps
        self.cuda = graph_factory is None
        self.graph_factory = graph_factory or torch.cuda.CUDAGraph
        self.stream = None
        self.graph = None
        self.static_inputs: tuple[torch.Tensor, ...] = ()
        self.static_outputs: dict[str, torch.Tensor] = {}
        self.replays = 0
        self.uncaptured = 0  # steps run outside the graph (warm-up, odd-shaped batches, no graph)
        self.failed = ""  # why capture failed; then every step runs uncaptured

    @property
    def model(self):
        return self.step.model

    @property
    def optimizer(self):
        return self.step.optimizer

    @property
    def scaler(self):
        """The wrapped step's gradient scaler (always None: fp16 is refused), for checkpoints."""
        return self.step.scaler

    def __call__(self, pixels, ids, mask) -> dict[str, torch.Tensor]:
        inputs = (pixels, ids, mask)
        if self.failed:
            self.uncaptured += 1
            return self.step(*inputs)
        if self.graph is not None:
            if not self._matches(inputs):
                self.uncaptured += 1
                return self.step(*inputs)
            return self._replay(inputs)
        if self.warmup_left > 0:
            self.warmup_left -= 1
            self.uncaptured += 1
            return self._on_side_stream(lambda: self.step(*inputs))
        try:
            self._capture(inputs)
        except Exception as exc:  # an op that cannot be captured: train on without the graph, loudly
            self.failed = f"{type(exc).__name__}: {exc}"
            self.graph, self.static_inputs, self.static_outputs = None, (), {}
            log.warning("train.step_graph: capturing the step failed (%s); training goes on uncaptured",
                        self.failed)
            self.step.optimizer.zero_grad(set_to_none=True)
            self.uncaptured += 1
            return self.step(*inputs)
        return self._replay(inputs)

    def _matches(self, inputs) -> bool:
        return all(a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
                   for a, b in zip(inputs, self.static_inputs))

    def _on_side_stream(self, fn):
        if not self.cuda:
            return fn()
        if self.stream is None:
            self.stream = torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            out = fn()
        torch.cuda.current_stream().wait_stream(self.stream)
        return out

    def _capture(self, inputs) -> None:
        self.static_inputs = tuple(t.clone() for t in inputs)
        self.step.optimizer.zero_grad(set_to_none=True)  # gradients are allocated inside the graph
        self.graph = self.graph_factory()
        if not self.cuda:
            self.static_outputs = self.graph.record(lambda: self.step.update(*self.static_inputs))
            return
        if self.stream is None:
            self.stream = torch.cuda.Stream()
        torch.cuda.synchronize()
        with torch.cuda.graph(self.graph, stream=self.stream, capture_error_mode="thread_local"):
            self.static_outputs = self.step.update(*self.static_inputs)

    def _replay(self, inputs) -> dict[str, torch.Tensor]:
        for static, value in zip(self.static_inputs, inputs):
            static.copy_(value, non_blocking=True)
        self.step.model.train()  # the mode the captured kernels run in, also for the module's flag
        self.graph.replay()
        self.replays += 1
        if self.step.scheduler is not None:
            self.step.scheduler.step()  # fills the optimizer's device LR tensor, outside the graph
        return {key: value.clone() for key, value in self.static_outputs.items()}


def graph_train_step(step: TrainStep, device: torch.device, distributed: bool = False,
                     warmup_steps: int = 3) -> GraphedTrainStep:
    """``step`` captured whole once warm, after ``check_graphable`` found nothing in the way."""
    check_graphable(step, device, distributed)
    return GraphedTrainStep(step, warmup_steps)
