"""``decode=auto`` as a measured choice: a few real training steps on each input path, then the
faster path is kept for the rest of the run and the decision is logged with both figures.

Why measure instead of a rule: on one H100 host with 16 cores training ``base``, the CPU-decode
workers fed 1,064 samples/s (input 0.8% of the step) and the nvjpeg path 1,014 samples/s (11.9%):
its decode runs on the training process's main thread and costs more than it saves when the
workers keep up, while on hosts with fewer cores per GPU it wins (BENCHMARKS.md, "Bottleneck
analyzer"); training eager ``base`` from files on such a host, ``mmscale bench decode-auto`` then
had the GPU path ~4% ahead. The crossing depends on cores, model, images and the step itself, so
each run measures it.

- ``plan_decode``: which paths to probe (``gpu`` then ``cpu``) or the one path to use, and why.
- ``choose_decode``: the decision as a pure function of per-path step-time samples.
- ``DecodeProbe``: the loop's batch iterator; the probe's steps are real training steps and the
  sampler position carries over each switch (``SplitBatches`` rebuilds at the step's position).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch

from mmscale.data.gpu_decode import nvjpeg_available
from mmscale.data.readers import resolve_source
from mmscale.errors import MmscaleError

log = logging.getLogger(__name__)
PREFERRED = "cpu"  # on a tie: CPU decode leaves the training process's main thread to the model
MIN_MARGIN_FRAC = 0.02  # differences under 2% of the step are not worth a busier main thread
NOISE_Z = 2.0  # a difference must also exceed 2 (robust) standard errors of the two means
PROBE_ORDER = ("gpu", "cpu")  # the preferred path last: when it wins there is no rebuild
LATE_MS = 2.0  # a fetch blocked this long found no batch ready: the workers' buffer is used up
PROBE_WARMUP_STEPS: int | None = None  # untimed steps per path; None: num_workers + 2 (tests set fewer)
PROBE_TIMED_STEPS: int | None = None  # timed steps per path; None: 2 * num_workers, at least 16


@dataclass
class DecodePlan:
    """The input paths to probe in order (one path: no probe) and why."""

    paths: list[str]
    reason: str
    warmup_steps: int = 0  # untimed steps per path, at least
    max_warmup_steps: int = 0  # ... and at most: untimed steps go on until a batch is late
    timed_steps: int = 0  # timed steps per path, at least
    max_timed_steps: int = 0  # ... and at most: a window of late rounds ends at a late batch

    @property
    def probes(self) -> bool:
        return len(self.paths) > 1

    @property
    def probe_steps(self) -> int:
        """Training steps the whole probe takes (all paths)."""
        # + 1: the fetch that ends a window is yielded untimed
        return len(self.paths) * (self.max_warmup_steps + self.max_timed_steps + 1) if self.probes else 0


def plan_decode(data_cfg, device: torch.device, steps_left: int, split: str = "train",
                paths: list[str] | None = None) -> DecodePlan:
    """``data.decode`` + where training runs -> ``DecodePlan``.

    ``paths``: the candidate paths when already known (a test's injected loaders); default: ``gpu``
    and ``cpu`` when CUDA and nvjpeg work here, else ``cpu`` alone. WebDataset shards stream
    through cpu: the GPU path and mid-epoch switches need a manifest's index.
    """
    if data_cfg.decode != "auto":
        return DecodePlan([data_cfg.decode], f"decode={data_cfg.decode}")
    if resolve_source(data_cfg.path, data_cfg.format, split).fmt == "wds":
        return DecodePlan(["cpu"], "auto: WebDataset shards are decoded on the CPU path")
    if paths is None:
        ok, why = (False, "device is not CUDA") if device.type != "cuda" else nvjpeg_available(device)
        if not ok:
            return DecodePlan(["cpu"], f"auto: {why}")
        paths = list(PROBE_ORDER)
    paths = sorted(paths, key=lambda p: p == PREFERRED)  # stable: the preferred path goes last
    # Workers start together and deliver their first batches together (a burst of num_workers),
    # and after a pause (torch.compile) hold up to num_workers * prefetch_factor batches: timing
    # starts once a batch is late, i.e. that buffer is used up, or after as many more steps.
    workers, buffered = data_cfg.num_workers, data_cfg.num_workers * data_cfg.prefetch_factor
    warmup = workers + 2 if PROBE_WARMUP_STEPS is None else PROBE_WARMUP_STEPS
    # Slow workers then deliver in rounds (on one H100 host, 16 workers x prefetch 4 feeding `base`:
    # ~50 steps without waiting, then ~20 steps waiting ~50 ms each): the window runs from one late
    # batch to a late batch at least `timed` steps on, i.e. whole rounds, up to `timed + buffered`.
    timed = max(16, 2 * workers) if PROBE_TIMED_STEPS is None else PROBE_TIMED_STEPS
    plan = DecodePlan(paths, "auto: measured", warmup, warmup + buffered, timed, timed + buffered)
    if len(paths) == 1:
        return DecodePlan(paths, "auto: one input path available")
    if steps_left <= plan.probe_steps:
        fallback = PREFERRED if PREFERRED in paths else paths[0]
        return DecodePlan([fallback], f"auto: {steps_left} steps left, too few for the "
                                      f"{plan.probe_steps}-step probe")
    return plan


@dataclass
class PathProbe:
    """One input path's timed steps: device-timeline spacing of consecutive steps (data wait
    included, since a step whose batch is late starts late) and host time blocked on the batch."""

    path: str
    step_ms: list[float] = field(default_factory=list)
    data_wait_ms: list[float] = field(default_factory=list)
    error: str = ""  # why the path failed; its timings are then not used
    warmup_steps: int = 0  # untimed steps run on this path before the timed ones

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.step_ms)

    def mean_step_ms(self) -> float | None:
        return statistics.fmean(self.step_ms) if self.step_ms else None

    def stderr_ms(self) -> float:
        """Standard error of the mean step from a robust spread (1.4826 x median absolute
        deviation), so one stalled step (GC, another process) does not turn a clear gap into a
        tie; 0 with one sample."""
        n = len(self.step_ms)
        if n < 2:
            return 0.0
        median = statistics.median(self.step_ms)
        mad = statistics.median(abs(x - median) for x in self.step_ms)
        return 1.4826 * mad / math.sqrt(n)

    def data_wait_pct(self) -> float | None:
        total = sum(self.step_ms)
        return 100 * sum(self.data_wait_ms) / total if total else None


@dataclass
class DecodeChoice:
    path: str  # cpu | gpu: kept for the rest of the run
    reason: str
    step_ms: dict[str, float | None] = field(default_factory=dict)  # mean timed step per path
    data_wait_pct: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    timed_steps: dict[str, int] = field(default_factory=dict)
    warmup_steps: dict[str, int] = field(default_factory=dict)
    decided_at_step: int = 0  # optimizer steps done when the choice was made

    def as_dict(self) -> dict:
        return asdict(self)

    def as_row(self) -> dict:
        """Flat metrics-row fields (``decode/...``), units in the names."""
        row = {"decode/path": self.path, "decode/reason": self.reason}
        for path, value in self.step_ms.items():
            row[f"decode/{path}_step_ms"] = value
            row[f"decode/{path}_data_wait_pct"] = self.data_wait_pct.get(path)
        for path, error in self.errors.items():
            row[f"decode/{path}_error"] = error
        return row


def choose_decode(probes: list[PathProbe], preferred: str = PREFERRED, min_margin_frac: float = MIN_MARGIN_FRAC,
                  noise_z: float = NOISE_Z) -> DecodeChoice:
    """The path with the lower mean step time; ``preferred`` when the difference is within noise.

    Within noise means: under ``min_margin_frac`` of the preferred path's step, or under
    ``noise_z`` standard errors (``PathProbe.stderr_ms``) of the difference of the two means.
    A failed path is never chosen. Raises ``ValueError`` when no path has timings.
    """
    measured = [p for p in probes if p.ok]
    choice = DecodeChoice("", "", {p.path: p.mean_step_ms() if p.ok else None for p in probes},
                          {p.path: p.data_wait_pct() if p.ok else None for p in probes},
                          {p.path: p.error for p in probes if p.error},
                          {p.path: len(p.step_ms) for p in probes}, {p.path: p.warmup_steps for p in probes})
    if not measured:
        raise ValueError("no input path was measured: " + "; ".join(f"{p.path}: {p.error or 'no steps'}"
                                                                      for p in probes))
    failed = ", ".join(f"{p.path} failed ({p.error})" for p in probes if p.error)
    if len(measured) == 1:
        choice.path = measured[0].path
        choice.reason = failed or f"only {choice.path} was measured"
        return choice
    fastest = min(measured, key=lambda p: p.mean_step_ms())
    pref = next((p for p in measured if p.path == preferred), None)
    fast_ms = fastest.mean_step_ms()
    if pref is None or pref is fastest:
        others = ", ".join(f"{p.path} {p.mean_step_ms():.2f}" for p in measured if p is not fastest)
        choice.path, choice.reason = fastest.path, f"faster: {fast_ms:.2f} ms/step vs {others}"
    else:
        pref_ms = pref.mean_step_ms()
        gap_ms = pref_ms - fast_ms
        noise_ms = max(min_margin_frac * pref_ms, noise_z * math.hypot(pref.stderr_ms(), fastest.stderr_ms()))
        if gap_ms <= noise_ms:
            choice.path = preferred
            choice.reason = (f"tie within noise: {preferred} {pref_ms:.2f} vs {fastest.path} {fast_ms:.2f} ms/step "
                             f"(gap {gap_ms:.2f} <= {noise_ms:.2f} ms); {preferred} frees the main thread")
        else:
            choice.path = fastest.path
            choice.reason = (f"faster: {fast_ms:.2f} vs {preferred} {pref_ms:.2f} ms/step "
                             f"(gap {gap_ms:.2f} > noise {noise_ms:.2f} ms)")
    if failed:
        choice.reason += f"; {failed}"
    return choice


class StepClock:
    """Marks step boundaries: CUDA events on the current stream (no host sync until ``read``), or
    the host clock on CPU where every op has finished when it returns."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self.marks: list = []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def intervals_ms(self) -> list[float]:
        """Time between consecutive marks, then forget them."""
        marks, self.marks = self.marks, []
        if len(marks) < 2:
            return []
        if self.cuda:
            marks[-1].synchronize()  # host-device sync: once per probed path, at its end
            return [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]
        return [1e3 * (b - a) for a, b in zip(marks, marks[1:])]


def _fetch_error(exc: BaseException) -> bool:
    """Whether a failure while fetching a batch is the path's own (fall back to the other path)
    rather than the data's or the user's (``DataError``, ``ConfigError``: raised as is)."""
    return isinstance(exc, Exception) and not isinstance(exc, MmscaleError)


class DecodeProbe:
    """Iterable of batches for the training loop: each planned path in turn for warm-up + timed
    steps, then the chosen path for good. With one planned path it is that path's stream.

    ``data``: a ``SplitBatches`` (``use_decode``, ``stream``, ``decode``). Each step's time runs
    from the fetch of its batch to the fetch of the next one, so the mark that closes a step is
    taken when the loop asks for the next batch (the loop needs no hook). ``agree(path)``: makes
    every process keep the same path (rank 0's under torchrun); ``on_decision(choice)``: called once.
    ``late_ms``: a fetch blocked this long is late (``math.inf``: fixed windows, the same steps on
    every rank).
    """

    def __init__(self, data, plan: DecodePlan, start_step: int, device: torch.device,
                 agree=None, on_decision=None, late_ms: float = LATE_MS):
        self.data, self.plan, self.start_step, self.late_ms = data, plan, start_step, late_ms
        self.clock = StepClock(device)
        self.agree = agree or (lambda path: path)
        self.on_decision = on_decision
        self.choice: DecodeChoice | None = None
        self.probes: list[PathProbe] = []
        self._errors: list[Exception] = []  # the paths' own failures, re-raised if every path fails

    @property
    def path(self) -> str:
        """The input path in use now (the kept one once the probe is done)."""
        return self.data.decode or self.data.loader.decode

    def summary(self) -> dict:
        """JSON-ready: the plan and, once made, the decision with its figures."""
        out = {"plan": self.plan.paths, "reason": self.plan.reason, "path": self.path}
        if self.choice is not None:
            out.update(self.choice.as_dict())
        return out

    def __iter__(self):
        if not self.plan.probes:  # the loader SplitBatches built is the path
            yield from self.data.stream(self.start_step)
            return
        step = self.start_step
        batches = None
        for path in self.plan.paths:
            if batches is not None:
                batches.close()  # the previous path's workers stop before this one is timed
            probe = PathProbe(path)
            self.probes.append(probe)
            batches = self._open(path, step, probe)
            step += yield from self._probe_path(batches, probe)
        self._decide(step)
        if self.data.decode != self.choice.path or batches is None or self.probes[-1].error:
            if batches is not None:
                batches.close()
            batches = self._open(self.choice.path, step, None)
        yield from batches

    def _probe_path(self, batches, probe: PathProbe):
        """Yield this path's probe steps; returns how many. Step i runs from the mark before its
        fetch to the mark before the next fetch (data wait included, device timeline on CUDA).

        The timed window [a, b) starts at the first late fetch after the warm-up minimum (the
        buffered batches are used up), or at the cap. When it started late, the workers deliver
        in rounds, and the window ends at the first late fetch after ``timed_steps`` (whole rounds,
        so the share of waiting steps is not cut short), at most ``max_timed_steps``; else it ends
        after ``timed_steps``. The fetch at b is yielded untimed.
        """
        plan, waits, start, rounds = self.plan, [], None, False
        self.clock.marks = []
        i = 0
        while True:
            self.clock.mark()  # before fetch i: ends step i - 1, starts step i
            batch, wait_ms = self._fetch(batches, probe)
            if batch is None:
                return i
            late = wait_ms >= self.late_ms
            waits.append(wait_ms)
            end = False
            if start is None:
                if i >= plan.warmup_steps and (late or i >= plan.max_warmup_steps):
                    start, rounds = i, late
            else:
                n = i - start  # timed steps before this fetch
                end = n >= plan.max_timed_steps or (n >= plan.timed_steps and (late or not rounds))
            i += 1
            yield batch
            if end:
                break
        probe.warmup_steps = start
        probe.step_ms = self.clock.intervals_ms()[start:i - 1]
        probe.data_wait_ms = waits[start:i - 1]
        return i

    def _open(self, path: str, step: int, probe: PathProbe | None):
        try:
            self.data.use_decode(path)
            return self.data.stream(step)  # a generator: building the loader happens at its first batch
        except Exception as exc:
            if probe is None or not _fetch_error(exc):
                raise
            self._fail(probe, exc)
            return iter(())

    def _fetch(self, batches, probe: PathProbe):
        """(batch, ms the host waited for it), or (None, 0) when the path failed."""
        t0 = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            probe.error = probe.error or "stream ended"
            return None, 0.0
        except Exception as exc:
            if not _fetch_error(exc):
                raise
            self._fail(probe, exc)
            return None, 0.0
        return batch, 1e3 * (time.perf_counter() - t0)

    def _fail(self, probe: PathProbe, exc: Exception) -> None:
        probe.error = f"{type(exc).__name__}: {exc}"
        self._errors.append(exc)

    def _decide(self, step: int) -> None:
        if not any(p.ok for p in self.probes) and self._errors:
            raise self._errors[-1]  # every path failed: the last path's own error, as without a probe
        choice = choose_decode(self.probes)
        agreed = self.agree(choice.path)
        if agreed != choice.path:
            choice.reason = f"rank 0 chose {agreed} (this rank measured: {choice.reason})"
            choice.path = agreed
        choice.decided_at_step = step
        self.choice = choice
        log.info("decode=auto keeps %s after step %d: %s", choice.path, step, choice.reason)
        if self.on_decision is not None:
            self.on_decision(choice)


def rank0_path(path: str, env, device: torch.device) -> str:
    """Under torchrun every rank keeps rank 0's path (one broadcast, once per run)."""
    if env is None or not env.active:
        return path
    code = torch.tensor([PROBE_ORDER.index(path) if path in PROBE_ORDER else -1], device=device)
    torch.distributed.broadcast(code, 0)
    value = int(code.item())  # host-device sync: once, at the decision
    return PROBE_ORDER[value] if value >= 0 else path
