"""Where the step time goes, and what bounds it: pure functions over stage timings.

Verdicts, with the thresholds they use (arguments, so the tests can pin them):

- ``input-bound``: the input stages (data wait, host-to-device copy, decode) take at least
  ``input_frac`` (default 10%) of the step. The device cannot be busier than the data allows,
  so a faster model would not help; the GPU idle fraction is given as supporting evidence.
- ``launch/host-bound`` (GPU only): the profiler saw the GPU idle for at least ``idle_frac``
  (default 30%) of the compute stages. Without a profiler figure, the fallback evidence is the
  compute stages' host issue time reaching ``launch_ratio`` (default 0.8) of their device time
  (the GPU finished each kernel about as fast as Python launched the next). The profiler figure
  wins when both exist: a hidden sync (``.item()``, a data-dependent shape, an all-ones mask
  check in a library) also makes host time track device time while the GPU is fully busy, as
  measured on the ``base`` preset (ratio 0.91, GPU idle 2%). Bigger batches, CUDA graphs or
  ``torch.compile`` help a launch-bound step; a faster GPU would not.
- ``compute-bound``: neither; the evidence lists the stages that dominate.

Whatever the verdict, a training thread that waited for a free core for at least ``wait_frac``
(default 10%) of the timed steps (the monitor's ``main_thread_wait_pct``, Linux) adds its own
evidence: the host's cores are oversubscribed (input workers and decode threads crowd out the
thread that launches the kernels), so the step is slower than this host could run it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mmscale.bench.pipeline.stages import COMPUTE_STAGES, INPUT_STAGES, STAGES, StepTiming


@dataclass
class StageAccount:
    """Mean stage times over the measured steps, and how well they add up to the step."""

    stage_ms: dict[str, float]
    host_ms: dict[str, float]
    step_ms: float  # mean wall-clock step, measured independently of the stage clock
    stages_sum_ms: float
    unattributed_ms: float  # step_ms - stages_sum_ms
    unattributed_frac: float
    shares: dict[str, float]  # stage / step
    steps: int
    samples_per_s: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def account(steps: list[StepTiming]) -> StageAccount:
    """Average the per-step timings; every known stage appears (0 when a step lacked it)."""
    if not steps:
        raise ValueError("no steps to account for")
    n = len(steps)
    names = list(STAGES) + sorted({k for s in steps for k in s.stage_ms} - set(STAGES))
    stage_ms = {k: sum(s.stage_ms.get(k, 0.0) for s in steps) / n for k in names}
    host_ms = {k: sum(s.host_ms.get(k, 0.0) for s in steps) / n for k in names}
    step_ms = sum(s.step_ms for s in steps) / n
    total = sum(stage_ms.values())
    samples = sum(s.samples for s in steps)
    wall_s = sum(s.step_ms for s in steps) / 1e3
    return StageAccount(
        stage_ms=stage_ms,
        host_ms=host_ms,
        step_ms=step_ms,
        stages_sum_ms=total,
        unattributed_ms=step_ms - total,
        unattributed_frac=(step_ms - total) / step_ms if step_ms > 0 else 0.0,
        shares={k: v / step_ms if step_ms > 0 else 0.0 for k, v in stage_ms.items()},
        steps=n,
        samples_per_s=samples / wall_s if samples and wall_s > 0 else None,
    )


def interval_union_ms(intervals: list[tuple[float, float]], window: tuple[float, float] | None = None) -> float:
    """Total length covered by ``intervals`` (start, end), optionally clipped to ``window``.

    Kernels on several streams overlap; the union is the time the device had any work."""
    clipped = []
    for start, end in intervals:
        if window is not None:
            start, end = max(start, window[0]), min(end, window[1])
        if end > start:
            clipped.append((start, end))
    clipped.sort()
    total, cur_start, cur_end = 0.0, None, None
    for start, end in clipped:
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def idle_fraction(busy_intervals: list[tuple[float, float]], windows: list[tuple[float, float]]) -> float:
    """Share of the ``windows`` (e.g. profiled steps) in which no busy interval was running."""
    span = sum(end - start for start, end in windows)
    if span <= 0:
        raise ValueError("windows must have positive length")
    busy = sum(interval_union_ms(busy_intervals, w) for w in windows)
    return 1.0 - busy / span


@dataclass
class Verdict:
    name: str  # "input-bound" | "compute-bound" | "launch/host-bound"
    evidence: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def verdict(acc: StageAccount, device_type: str, gpu_idle_frac: float | None = None,
            compute_idle_frac: float | None = None, input_frac: float = 0.10,
            launch_ratio: float = 0.8, idle_frac: float = 0.30, loop_wait_frac: float | None = None,
            wait_frac: float = 0.10) -> Verdict:
    """Classify the step from its account (see the module doc for the rules)."""
    result = _classify(acc, device_type, gpu_idle_frac, compute_idle_frac, input_frac, launch_ratio, idle_frac)
    result.metrics["loop_thread_wait_frac"] = loop_wait_frac
    if loop_wait_frac is not None and loop_wait_frac >= wait_frac:
        result.evidence.append(
            f"the training thread waited for a free core {100 * loop_wait_frac:.0f}% of the timed steps "
            f"(threshold {100 * wait_frac:.0f}%): the host's cores are oversubscribed; fix: fewer workers "
            "or decode threads, decode=gpu, or a step that launches less (CUDA graphs)")
    return result


def _classify(acc: StageAccount, device_type: str, gpu_idle_frac, compute_idle_frac, input_frac: float,
              launch_ratio: float, idle_frac: float) -> Verdict:
    step = acc.step_ms
    input_ms = sum(acc.stage_ms.get(k, 0.0) for k in INPUT_STAGES)
    compute_ms = sum(acc.stage_ms.get(k, 0.0) for k in COMPUTE_STAGES)
    compute_host_ms = sum(acc.host_ms.get(k, 0.0) for k in COMPUTE_STAGES)
    issue_ratio = compute_host_ms / compute_ms if compute_ms > 0 else None
    metrics = {"input_frac": input_ms / step if step > 0 else 0.0, "compute_ms": compute_ms,
               "host_issue_ratio": issue_ratio if device_type == "cuda" else None,
               "gpu_idle_frac": gpu_idle_frac, "compute_idle_frac": compute_idle_frac}
    top = sorted(((acc.stage_ms.get(k, 0.0), k) for k in STAGES), reverse=True)[:3]
    top_text = ", ".join(f"{k} {ms:.1f} ms ({100 * ms / step:.0f}%)" for ms, k in top if step > 0)
    idle_text = f"GPU idle {100 * gpu_idle_frac:.0f}% of the step (profiler)" if gpu_idle_frac is not None else None

    if metrics["input_frac"] >= input_frac:
        parts = [f"{k} {acc.stage_ms.get(k, 0.0):.1f} ms" for k in INPUT_STAGES]
        evidence = [f"input stages take {100 * metrics['input_frac']:.0f}% of the {step:.1f} ms step "
                    f"(threshold {100 * input_frac:.0f}%): " + ", ".join(parts)]
        if idle_text:
            evidence.append(idle_text)
        evidence.append("fix: more workers, decode=gpu, or a faster storage path")
        return Verdict("input-bound", evidence, metrics)

    if device_type == "cuda":
        if compute_idle_frac is not None:
            bound = compute_idle_frac >= idle_frac
        else:
            bound = issue_ratio is not None and issue_ratio >= launch_ratio
        if bound:
            evidence = []
            if issue_ratio is not None:
                evidence.append(f"host issue time is {100 * issue_ratio:.0f}% of device time in the compute "
                                f"stages ({compute_host_ms:.1f} of {compute_ms:.1f} ms; threshold "
                                f"{100 * launch_ratio:.0f}%): the GPU waits for kernel launches")
            if compute_idle_frac is not None:
                evidence.append(f"GPU idle {100 * compute_idle_frac:.0f}% of the compute stages (profiler)")
            evidence.append("fix: larger batch, torch.compile / CUDA graphs, fewer small ops")
            return Verdict("launch/host-bound", evidence, metrics)

    evidence = [f"input stages {100 * metrics['input_frac']:.0f}% of the step (below "
                f"{100 * input_frac:.0f}%)", f"largest stages: {top_text}"]
    if device_type == "cuda" and compute_idle_frac is not None:
        evidence.append(f"GPU idle {100 * compute_idle_frac:.0f}% of the compute stages (profiler; "
                        f"threshold {100 * idle_frac:.0f}%)")
        if issue_ratio is not None and issue_ratio >= launch_ratio:
            evidence.append(f"host issue time is {100 * issue_ratio:.0f}% of device time, yet the GPU stays "
                            "busy: the host waits on a sync inside the step, not the GPU on the host")
    elif device_type == "cuda" and issue_ratio is not None:
        evidence.append(f"host issue time {100 * issue_ratio:.0f}% of device time: kernels queue ahead")
    elif device_type != "cuda":
        evidence.append("CPU run: the launch-bound check needs a GPU (host and device are the same clock)")
    if idle_text:
        evidence.append(idle_text)
    return Verdict("compute-bound", evidence, metrics)
