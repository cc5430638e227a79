"""Stage timing of one training step: contiguous marks timed by CUDA events (host timers on CPU).

A step is a sequence of marks; each mark starts a stage that lasts until the next mark, so the
stages tile the step with no gap by construction and the check that matters is against an
independent clock: the host wall time from the first mark to the end of the step (after one
device sync). ``instrument`` places the marks inside the model and optimizer with hooks, so the
real ``TrainStep`` runs unmodified:

    data_wait -> h2d -> decode -> loss(glue) -> image_fwd -> loss -> text_fwd -> loss
              -> fusion_fwd -> loss(heads) -> backward -> optimizer -> end

``loss`` collects everything in the forward outside the two encoders and the fusion (the ITC/ITM
heads, hard-negative sampling, projections); ``backward`` includes the loss scaling and gradient
clipping; ``optimizer`` the step, ``zero_grad`` and the scheduler. A compiled or graphed step
has no hooks to mark: it is one ``compiled_step`` stage (forward, backward and update). Each
mark also keeps its host time: on a GPU, a stage whose host (issue) time is close to its device
time means the device was waiting for Python to launch kernels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

INPUT_STAGES = ("data_wait", "h2d", "decode")
COMPUTE_STAGES = ("image_fwd", "text_fwd", "fusion_fwd", "loss", "backward", "optimizer", "compiled_step")
STAGES = INPUT_STAGES + COMPUTE_STAGES


@dataclass
class StepTiming:
    """One step: device-clock ms per stage, host-clock ms per stage, and the wall-clock step."""

    stage_ms: dict[str, float]
    host_ms: dict[str, float]
    step_ms: float
    samples: int = 0
    extra: dict = field(default_factory=dict)


class StageClock:
    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.marks: list[tuple[str, float, object]] = []
        self.enabled = True

    def begin_step(self, first_stage: str = "data_wait") -> None:
        self.marks = []
        self.mark(first_stage)

    def mark(self, stage: str) -> None:
        """From now on time goes to ``stage`` (until the next mark)."""
        if not self.enabled:
            return
        event = None
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()  # on the current stream: times when the device reaches this point
        self.marks.append((stage, time.perf_counter(), event))

    def end_step(self, samples: int = 0) -> StepTiming:
        self.mark("_end")
        if self.cuda:
            self.marks[-1][2].synchronize()  # host-device sync: once per step, to read the events
        end_s = time.perf_counter()
        stage_ms: dict[str, float] = {}
        host_ms: dict[str, float] = {}
        for (name, host_s, event), (_, next_host_s, next_event) in zip(self.marks, self.marks[1:]):
            device_ms = event.elapsed_time(next_event) if self.cuda else (next_host_s - host_s) * 1e3
            stage_ms[name] = stage_ms.get(name, 0.0) + device_ms
            host_ms[name] = host_ms.get(name, 0.0) + (next_host_s - host_s) * 1e3
        step_ms = (end_s - self.marks[0][1]) * 1e3
        return StepTiming(stage_ms, host_ms, step_ms, samples)


def instrument(model: torch.nn.Module, optimizer, clock: StageClock) -> list:
    """Hooks that mark stages inside ``model`` (a MultimodalModel with ``image_encoder``,
    ``text_encoder`` and ``fusion``) and at ``optimizer.step``; returns handles to ``remove()``."""
    handles = []
    for attr, stage in (("image_encoder", "image_fwd"), ("text_encoder", "text_fwd"), ("fusion", "fusion_fwd")):
        module = getattr(model, attr)
        handles.append(module.register_forward_pre_hook(lambda *_, s=stage: clock.mark(s)))
        handles.append(module.register_forward_hook(lambda *_: clock.mark("loss")))
    handles.append(model.register_forward_hook(lambda *_: clock.mark("backward")))
    handles.append(optimizer.register_step_pre_hook(lambda *_: clock.mark("optimizer")))
    return handles


def remove_hooks(handles: list) -> None:
    for handle in handles:
        handle.remove()
