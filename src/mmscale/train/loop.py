"""``train(job) -> TrainResult``: the training loop, from config to a flat JSON-ready result.

Order of work: resolve device/precision/world once, build model -> wrap -> optimizer, restore a
checkpoint if asked, then data (``decode=auto`` plans its probe from the steps left: the loop draws
batches from a ``DecodeProbe``), count FLOPs once, then loop. Each log step costs exactly one
host-device sync (reading the losses); nothing else on the hot path waits for the device
(``decode=auto`` adds one per probed path, once per run, to read its step timings).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mmscale.config.load import to_dict
from mmscale.data.normalize import to_model_input
from mmscale.data.skips import SkipCounter
from mmscale.errors import CheckpointError, ConfigError, DataError
from mmscale.strict_json import write_json
from mmscale.train import distributed as dist_utils
from mmscale.train.build import build_run
from mmscale.train.config import TrainJob
from mmscale.train.contrastive import contrastive_batch
from mmscale.train.data import SplitBatches, load_job_tokenizer
from mmscale.train.decode_probe import LATE_MS, DecodeProbe, plan_decode, rank0_path
from mmscale.train.evaluate import evaluate_retrieval
from mmscale.train.flops import count_train_flops, mfu, peak_tflops
from mmscale.train.metrics import MetricsWriter, host_rss_gib, peak_gpu_gib, peak_rss_gib
from mmscale.train.monitoring import finish_monitor, mark_step, start_monitor
from mmscale.train.runtime import apply_process_settings, resolve_runtime
from mmscale.train.state import SINGLE_FILE, find_checkpoint, restore_training_state, save_training_state
from mmscale.train.trackers import check_installed

log = logging.getLogger(__name__)
GRAPH_WARMUP_STEPS = 3  # ordinary steps before the step graph is captured (compile, AdamW state)


@dataclass
class TrainResult:
    steps: int = 0
    samples: int = 0
    wall_s: float = 0.0
    samples_per_s: float = 0.0  # over the whole wall clock, compile and capture included
    steady_samples_per_s: float | None = None  # after compile and capture (None: run too short to tell)
    steady_mfu: float | None = None
    startup_s: float = 0.0  # wall time before the steady-state window: compile, capture, first batches
    checkpoint_s: float = 0.0  # periodic checkpoint saves (the final one not included), outside the steady figure
    loss: float | None = None
    loss_itc: float | None = None
    loss_itm: float | None = None
    flops_per_step: int = 0
    mfu: float | None = None
    peak_gpu_gib: float = 0.0
    peak_rss_gib: float = 0.0
    data_wait_pct: float = 0.0
    world_size: int = 1
    contrastive_batch: int = 0  # pairs one ITC loss contrasts: the micro-batch of every process
    device: str = "cpu"
    precision: str = "fp32"
    runtime: dict = field(default_factory=dict)  # what the run's auto switches resolved to
    resumed_from_step: int = 0
    skipped_samples: int = 0
    empty_steps: int = 0  # steps whose whole batch was bad samples: no update, counted in skipped_samples
    skipped_manifest_rows: int = 0  # rows of the train manifest that never became samples (file:line)
    skip_reasons: dict = field(default_factory=dict)  # reason -> count, manifest rows and samples
    decode: str = ""  # input path the run ended on: cpu | gpu
    decode_probe: dict = field(default_factory=dict)  # decode=auto: plan, choice, per-path step_ms
    eval: dict = field(default_factory=dict)
    monitor: dict = field(default_factory=dict)  # train.monitor_interval_s: the timeline's file and field stats
    out_dir: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def train(job: TrainJob, show_progress: bool | None = None, decode_paths: dict | None = None,
          monitor_interval_s: float = 0.2) -> TrainResult:
    """Train ``job``. ``show_progress``: a progress bar (None: when stderr is a terminal; otherwise
    one log line per ``log_every`` steps). ``decode_paths``: input path name -> ``build_loader``-like
    callable; with ``data.decode=auto`` they are the paths probed (tests inject a slowed one).
    ``monitor_interval_s``: seconds between hardware samples in ``monitor.jsonl`` (0: none)."""
    if monitor_interval_s < 0:
        raise ValueError(f"monitor_interval_s must be >= 0, got {monitor_interval_s}")
    cfg = job.train
    env = dist_utils.init_distributed("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
    monitor = None
    try:
        monitor = start_monitor(monitor_interval_s, env.is_main)
        if show_progress is None:
            show_progress = sys.stderr.isatty()
        return _train(job, env, show_progress, decode_paths, monitor)
    finally:
        if monitor is not None:
            monitor.stop()  # a failed run's sampler process must not outlive it (no-op once stopped)
        dist_utils.shutdown(env)


def _train(job: TrainJob, env, show_progress: bool, decode_paths: dict | None = None,
           monitor=None) -> TrainResult:
    cfg = job.train
    out_dir = Path(cfg.out_dir)
    micro_batch = job.check_world(env.world_size)  # fails before any work if the batch cannot split
    check_installed(cfg.trackers)  # MLflow or W&B asked for and not installed: before any work too
    runtime = resolve_runtime(cfg, env)
    apply_process_settings(runtime)
    device, precision = runtime.device, runtime.precision
    checkpoint_path, resume = _resume_point(cfg, out_dir)
    itc_batch = contrastive_batch(micro_batch, env)
    if env.is_main:
        log.info("runtime: %s", runtime.describe())
        log.info("batch: %d a step = %d processes x %d x grad_accum %d; ITC contrasts %d pairs, ITM draws "
                 "hard negatives from each process's %d", cfg.batch_size, env.world_size, micro_batch,
                 cfg.grad_accum, itc_batch, micro_batch)
        if env.active:  # on N nodes, the folder is on this host unless it is a shared filesystem
            log.info("global rank 0 on %s writes the results to %s", socket.gethostname(), out_dir.resolve())

    tokenizer = load_job_tokenizer(job)
    rank_batch = micro_batch * cfg.grad_accum
    run = build_run(job, runtime, graph_warmup_steps=GRAPH_WARMUP_STEPS)
    model, wrapped, optimizer, scheduler, step_fn = run.model, run.wrapped, run.optimizer, run.scheduler, run.step
    start_step = 0
    if resume:
        start_step = restore_training_state(checkpoint_path, job, wrapped, optimizer, scheduler, step_fn.scaler)
        if env.is_main:
            log.info("resuming from %s (step %d)", checkpoint_path, start_step)
        if start_step >= cfg.steps:  # before anything in out_dir is written
            raise ConfigError("train.steps", f"{checkpoint_path} is already at step {start_step}, so "
                              f"train.steps={cfg.steps} leaves nothing to run (raise train.steps to continue)")
    elif checkpoint_path is not None and env.is_main:
        log.warning("%s holds a checkpoint of an earlier run; this fresh run replaces it and its "
                    "metrics.jsonl (pass --resume to continue it, or another --out / train.out_dir)", out_dir)
    # decode=auto: which input paths to probe (CUDA + nvjpeg: gpu, then cpu) or the one to use
    plan = plan_decode(job.data, device, cfg.steps - start_step, paths=list(decode_paths) if decode_paths else None)
    train_data = SplitBatches(job, "train", rank_batch, tokenizer, env, device,
                              decode=plan.paths[0] if job.data.decode == "auto" else None,
                              loader_factories=decode_paths, endless=True)
    config = to_dict(job)
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "config.json", config, indent=2)
    writer = MetricsWriter(out_dir, cfg.trackers, config=config, enabled=env.is_main, append=resume)
    peak = peak_tflops(device)
    result = TrainResult(world_size=env.world_size, contrastive_batch=itc_batch, device=str(device),
                         precision=precision.label, runtime=runtime.as_dict(), resumed_from_step=start_step,
                         out_dir=str(out_dir))
    # under torchrun every rank must reach the decision (a broadcast) at the same step: the probe
    # windows are then fixed (no waiting for a late batch, which each rank would see at its own step)
    feed = DecodeProbe(train_data, plan, start_step, device, agree=lambda path: rank0_path(path, env, device),
                       on_decision=lambda choice: writer.write({"step": choice.decided_at_step, **choice.as_row()}),
                       late_ms=math.inf if env.active else LATE_MS)
    batches = iter(feed)
    flops_per_step, total_wait_s, total_flops = 0, 0.0, 0
    window = _Window()
    started = time.perf_counter()
    progress = _progress(show_progress and env.is_main, cfg.steps, start_step)
    losses = {}
    # steps before the steady-state window: compile, capture and the first batches (reported apart)
    warm_steps = GRAPH_WARMUP_STEPS + 2 if runtime.step_graph else (2 if runtime.compile else 1)
    steady = None  # (time, used samples, FLOPs) where the steady-state window starts
    steady_aside_s = 0.0  # checkpoints and evaluations inside the steady-state window
    skips, used_samples = SkipCounter(), 0  # this rank's bad samples by reason, and its good ones
    done = start_step  # optimizer steps completed, resumed ones included
    with progress:
        for step in range(start_step, cfg.steps):
            t_wait = time.perf_counter()
            batch = next(batches)
            pixels = to_model_input(batch.images, device)  # uint8 -> normalized float on the device
            ids = batch.input_ids.to(device, non_blocking=True)
            mask = batch.attention_mask.to(device, non_blocking=True)
            wait_s = time.perf_counter() - t_wait
            window.data_wait_s += wait_s
            total_wait_s += wait_s
            skips.merge(batch.skips)
            used_samples += len(batch)
            if env.active and len(batch) < cfg.grad_accum:
                _refuse_short_batch(batch, step, env, cfg.grad_accum)
            if len(batch) == 0:  # every sample of this batch was bad: no update, the step counted
                _skip_empty_batch(batch, step)
                result.empty_steps += 1
                if scheduler is not None:
                    scheduler.step()  # the learning-rate schedule follows the step number
                writer.write({"step": step + 1, "data/empty_batch_skipped_samples": batch.skips.skipped})
            else:
                if not flops_per_step:  # counted once, on the first batch that computes
                    flops_per_step = cfg.grad_accum * count_train_flops(
                        model, pixels[:micro_batch], ids[:micro_batch], mask[:micro_batch], precision.autocast()
                    )
                losses = step_fn(pixels, ids, mask)
                window.steps += 1
                window.flops += flops_per_step
                total_flops += flops_per_step
            done = step + 1
            progress.update(progress.task_ids[0], completed=done)
            last = done == cfg.steps
            logged = bool(window.steps) and (done % cfg.log_every == 0 or last)
            if logged:
                row = _log_row(done, losses, window, rank_batch * env.world_size, peak, optimizer, device, env)
                writer.write(row)
                mark_step(monitor, done)
                window = _Window()
                if env.is_main and not show_progress:  # a log file or a batch system's output: one line
                    log.info(_log_line(row, cfg.steps, started, start_step))
                if steady is None and done - start_step >= warm_steps:  # compile and capture are behind
                    steady = (time.perf_counter(), used_samples, total_flops)  # just after the row's sync
            # one process checks its clock every step; under torchrun only at log steps (a broadcast)
            if cfg.time_limit_s and (logged or not env.active) and not last:
                if _time_is_up(started, cfg.time_limit_s, env, device):
                    last = True
                    if not logged and window.steps:
                        writer.write(_log_row(done, losses, window, rank_batch * env.world_size, peak,
                                              optimizer, device, env))
            # checkpoints and evaluations are timed apart: the windows and the steady figure are training
            t_aside = time.perf_counter()
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and not last:
                save_training_state(out_dir, done, job, wrapped, optimizer, scheduler, step_fn.scaler, env)
                result.checkpoint_s += time.perf_counter() - t_aside
            if cfg.eval_every and done % cfg.eval_every == 0 and not last:
                writer.write({"step": done, **_prefixed(evaluate_retrieval(job, model, tokenizer, env, device,
                                                                           precision), "eval/")})
            aside_s = time.perf_counter() - t_aside
            window.started += aside_s  # the window's clock skips the time spent aside
            if steady is not None:
                steady_aside_s += aside_s
            if last:
                break
    steps_run = done - start_step
    wall_s = time.perf_counter() - started
    computed = steps_run - result.empty_steps
    if computed == 0:
        batches.close()
        train_data.loader.close()
        _refuse_no_usable_sample(job, skips, train_data.loader.index_skips, env)
    save_training_state(out_dir, done, job, wrapped, optimizer, scheduler, step_fn.scaler, env)
    batches.close()
    train_data.loader.close()  # persistent workers would otherwise idle until the loader is collected
    result.decode, result.decode_probe = feed.path, feed.summary()
    eval_job = job
    if job.data.decode == "auto" and not decode_paths:  # evaluate through the path training kept
        eval_job = dataclasses.replace(job, data=dataclasses.replace(job.data, decode=feed.path))
    result.eval = evaluate_retrieval(eval_job, model, tokenizer, env, device, precision)
    if env.is_main:
        writer.write({"step": done, **_prefixed(result.eval, "eval/")})
    writer.close()
    result.monitor = finish_monitor(monitor, out_dir)  # write_jsonl makes the folder
    final = {k: v.item() for k, v in losses.items()}  # one sync at the end
    # every rank's bad samples and used ones (a batch with bad samples is short); the manifest's
    # bad rows once, as every rank indexes the same manifest
    reasons = _summed_over_ranks(skips.by_reason, env)
    index_skips = train_data.loader.index_skips
    result.skipped_samples = sum(reasons.values())
    result.samples = _summed_over_ranks({"used": used_samples}, env)["used"]
    result.skipped_manifest_rows = index_skips.skipped
    for reason, n in index_skips.by_reason.items():
        reasons[reason] = reasons.get(reason, 0) + n
    result.skip_reasons = reasons
    result.steps, result.wall_s = steps_run, wall_s
    result.samples_per_s = result.samples / wall_s if wall_s else 0.0
    result.loss, result.loss_itc, result.loss_itm = final.get("loss"), final.get("loss_itc"), final.get("loss_itm")
    result.flops_per_step = flops_per_step
    result.mfu = mfu(total_flops, 1, wall_s, peak)  # the steps that computed
    if steady is not None and done > start_step + warm_steps:
        steady_s = wall_s - (steady[0] - started) - steady_aside_s
        result.startup_s = steady[0] - started
        result.steady_samples_per_s = (used_samples - steady[1]) * env.world_size / steady_s
        result.steady_mfu = mfu(total_flops - steady[2], 1, steady_s, peak)
    result.peak_gpu_gib, result.peak_rss_gib = peak_gpu_gib(device), peak_rss_gib()
    result.data_wait_pct = 100 * total_wait_s / wall_s if wall_s else 0.0
    if env.is_main:
        write_json(out_dir / "result.json", result.as_dict(), indent=2)
    return result


def _resume_point(cfg, out_dir: Path) -> tuple[Path | None, bool]:
    """The run folder's checkpoint and whether to continue from it: always with train.resume=true
    (it must exist), when there is one with auto, and in a torchrun restart attempt (after a rank
    failed under --max-restarts, the job goes on from its last checkpoint with no step by hand)."""
    found = find_checkpoint(out_dir)
    if cfg.resume is True and found is None:
        raise CheckpointError(out_dir / SINGLE_FILE,
                              "not found (train without --resume, or pass another --out / train.out_dir)")
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    return found, found is not None and (cfg.resume is True or cfg.resume == "auto" or restarted)


def _summed_over_ranks(counts: dict[str, int], env) -> dict[str, int]:
    """Integer counts summed over the ranks of a torchrun job (the keys may differ by rank)."""
    if not env.active:
        return dict(counts)
    gathered = [None] * env.world_size
    torch.distributed.all_gather_object(gathered, dict(counts))
    total: dict[str, int] = {}
    for part in gathered:
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    return total


def _skip_empty_batch(batch, step: int) -> None:
    """One process moves on to the next batch (the step keeps its number, so a resume reads the
    same batches)."""
    log.warning("step %d: every sample of the batch was bad (%s); no update this step", step + 1,
                _skip_reasons(batch))


def _refuse_short_batch(batch, step: int, env, grad_accum: int) -> None:
    """Under torchrun every rank runs grad_accum micro-batches, each with an ITC gather and the last
    with the gradient all-reduce: the others would wait for a rank with too few samples, so the run
    stops with the reasons instead."""
    raise DataError("data.path", f"rank {env.rank}'s batch at step {step + 1} kept {len(batch)} samples, fewer "
                    f"than train.grad_accum={grad_accum} ({_skip_reasons(batch)}); find the bad ones with "
                    "`mmscale data check`")


def _skip_reasons(batch) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in batch.skips.by_reason.items()) or "no samples"


@dataclass
class _Window:
    """Accumulates one logging window: steps run and time spent blocked on data."""

    steps: int = 0
    data_wait_s: float = 0.0
    flops: int = 0  # counted FLOPs of the window's steps (one process's share)
    started: float = field(default_factory=time.perf_counter)


def _log_row(step, losses, window, global_batch, peak, optimizer, device, env) -> dict:
    values = {k: dist_utils.all_reduce_mean(v.detach().float(), env).item() for k, v in losses.items()}
    # the .item() above is this log step's one host-device sync: the window's time is now real
    elapsed = time.perf_counter() - window.started
    compute_s = max(0.0, elapsed - window.data_wait_s)
    row = {"step": step, "lr": float(optimizer.param_groups[0]["lr"])}  # a device tensor under step_graph
    row.update({f"loss/{k.removeprefix('loss_') if k != 'loss' else 'total'}": v for k, v in values.items()})
    row.update({
        "throughput/samples_per_s": window.steps * global_batch / elapsed if elapsed else 0.0,
        "time/step_ms": 1000 * elapsed / max(1, window.steps),
        "time/data_wait_ms": 1000 * window.data_wait_s / max(1, window.steps),
        "time/compute_ms": 1000 * compute_s / max(1, window.steps),
        "time/data_wait_pct": 100 * window.data_wait_s / elapsed if elapsed else 0.0,
        "memory/peak_gpu_gib": peak_gpu_gib(device),
        "memory/host_rss_gib": host_rss_gib(),
    })
    value = mfu(window.flops, 1, elapsed, peak)  # the window's steps
    if value is not None:
        row["mfu/pct"] = 100 * value
    return row


def _refuse_no_usable_sample(job: TrainJob, skips: SkipCounter, index_skips: SkipCounter, env) -> None:
    """No step updated the model: stop with the skips by reason, before a checkpoint is written."""
    reasons = _summed_over_ranks(skips.by_reason, env)
    for reason, n in index_skips.by_reason.items():
        reasons[reason] = reasons.get(reason, 0) + n
    counted = ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items())) or "no samples were read"
    raise DataError(job.data.path, f"no usable sample: no step updated the model ({counted}); no checkpoint "
                    "was written. `mmscale data check` lists the bad samples by file and line")


def _log_line(row: dict, total_steps: int, started: float, start_step: int) -> str:
    """The console line of a log step when no progress bar is shown: step, loss, speed, ETA."""
    step = row["step"]
    elapsed = time.perf_counter() - started
    eta_s = elapsed / max(1, step - start_step) * (total_steps - step)
    line = f"step {step}/{total_steps} loss {row.get('loss/total', float('nan')):.4f} " \
           f"{row['throughput/samples_per_s']:,.1f} samples/s"
    if "mfu/pct" in row:
        line += f" MFU {row['mfu/pct']:.1f}%"
    return line + f" ETA {eta_s / 60:.1f} min"


def _time_is_up(started: float, limit_s: float, env, device) -> bool:
    """All ranks must stop at the same step, so rank 0's clock decides (broadcast under torchrun)."""
    up = time.perf_counter() - started >= limit_s
    if not env.active:
        return up  # host clock only: no device sync
    flag = torch.tensor([float(up)], device=device)
    torch.distributed.broadcast(flag, 0)
    return bool(flag.item())


def _prefixed(values: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in values.items()}


def _progress(show: bool, total: int, completed: int):
    progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        disable=not show, transient=False)
    progress.add_task("train", total=total, completed=completed)
    return progress
