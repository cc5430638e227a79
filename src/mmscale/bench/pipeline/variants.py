"""What-if variants of the analyzer, run in the same process so the machine's noise cancels.

Each group is one function in ``VARIANTS`` returning flat ``VariantRow``s; the first row of a
group is its baseline and every other row carries ``speedup`` over it. A variant that cannot run
here (no GPU, no nvjpeg, compile on a CPU-only run) is a row with ``skipped`` saying why.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch

from mmscale.bench.pipeline.run import (cycle, ours_to_device, reference_to_device, run_steps, step_is_compiled,
                                        synthetic_to_device)
from mmscale.bench.pipeline.stages import INPUT_STAGES
from mmscale.bench.pipeline.verdict import account
from mmscale.data.loader import Loader, shutdown_workers
from mmscale.data.reference import MultiModalDataset, reference_loader
from mmscale.monitor import HardwareMonitor
from mmscale.train.decode_probe import PathProbe, choose_decode
from mmscale.train.synthetic import synthetic_batch

EAGER = {"compile": False, "step_graph": False}  # rows that compare kernels or precisions, not compilation


@dataclass
class VariantRow:
    group: str
    variant: str
    samples_per_s: float | None = None
    step_ms: float | None = None
    input_frac: float | None = None  # data wait + h2d + decode share of the step
    speedup: float | None = None  # samples/s over the group's first row
    skipped: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _row(group: str, name: str, result, **extra) -> VariantRow:
    acc = account(result.steps)
    input_ms = sum(acc.stage_ms[k] for k in INPUT_STAGES)
    return VariantRow(group, name, result.samples_per_s, acc.step_ms,
                      input_ms / acc.step_ms if acc.step_ms else None, extra=extra)


def with_speedups(rows: list[VariantRow]) -> list[VariantRow]:
    base = next((r for r in rows if r.samples_per_s and not r.skipped), None)
    for r in rows:
        if base is not None and r.samples_per_s and not r.skipped:
            r.speedup = r.samples_per_s / base.samples_per_s
    return rows


# --- input paths ------------------------------------------------------------------------------
def _reference_batches(ctx):
    """The seed's dataset: per-sample PIL + transforms + tokenizer call."""
    index = ctx.index
    n = min(len(index), ctx.batch_size * (ctx.steps + ctx.warmup + 1))
    paths = [index.path(i) for i in range(n)]
    texts = [index.caption(i) for i in range(n)]
    return MultiModalDataset(paths, texts, ctx.reference_tokenizer(), ctx.job.data.image_size,
                             ctx.job.data.max_text_len)


def _naive_loop(dataset, batch_size: int):
    """The first article's ``process_batch``: one sample after another in the training process."""
    def one_pass():
        for start in range(0, len(dataset) - batch_size + 1, batch_size):
            items = [dataset[i] for i in range(start, start + batch_size)]
            yield {k: torch.stack([it[k] for it in items]) for k in items[0]}
    return one_pass


def _endless(loader):
    """Pass after pass over one loader (its persistent workers start once)."""
    return cycle(lambda: loader)


def quiet(batches, loader) -> None:
    """End a timed row: close its batch generator (stops a decode thread) and stop its workers,
    which would otherwise go on filling their prefetch queues while the next row is timed."""
    batches.close()
    if isinstance(loader, Loader):
        loader.close()
    elif loader is not None:
        shutdown_workers(loader)


def input_variants(ctx) -> list[VariantRow]:
    rows = []
    dataset = _reference_batches(ctx)
    runs = [("naive_loop", None, reference_to_device),
            ("reference_dataloader", lambda: reference_loader(dataset, ctx.batch_size, ctx.job.data.num_workers),
             reference_to_device),
            ("dataloader_cpu_decode", lambda: ctx.loader("cpu"), ours_to_device)]
    if not ctx.gpu_decode_reason:
        # the default reads and decodes in two background threads; the other rows are the same path
        # with one thread, and decoding between steps, so the threads' effect is measured in one run
        runs += [("gpu_decode", lambda: ctx.loader("gpu"), ours_to_device),
                 ("gpu_decode_1thread", lambda: ctx.loader("gpu", decode_threads=1), ours_to_device),
                 ("gpu_decode_inline", lambda: ctx.loader("gpu", decode_threads=0), ours_to_device)]
    timed = {}
    for name, make_loader, adapter in runs:
        loader = make_loader() if make_loader else None
        batches = _endless(loader) if loader is not None else cycle(_naive_loop(dataset, ctx.batch_size))
        try:
            step = ctx.train_step()
            timed[name] = run_steps(batches, adapter, step, ctx.device, ctx.steps, ctx.warmup,
                                    hooks=not step_is_compiled(step))
        finally:
            quiet(batches, loader)
        rows.append(_row("input", name, timed[name]))
    if ctx.gpu_decode_reason:
        rows.append(VariantRow("input", "gpu_decode", skipped=ctx.gpu_decode_reason))
    rows.append(decode_auto_row(timed["dataloader_cpu_decode"], timed.get("gpu_decode"), ctx.gpu_decode_reason))
    return with_speedups(rows)


def decode_auto_row(cpu_result, gpu_result, gpu_unavailable: str) -> VariantRow:
    """Which path training's ``decode=auto`` would keep given these steps (its own decision rule,
    ``choose_decode``, on the two rows above); no new measurement, so no samples/s of its own."""
    def probe(path, result):
        return PathProbe(path, [t.step_ms for t in result.steps],
                         [t.stage_ms.get("data_wait", 0.0) for t in result.steps])

    probes = [probe("cpu", cpu_result)]
    if gpu_result is not None:
        probes.insert(0, probe("gpu", gpu_result))
    choice = choose_decode(probes)
    if gpu_result is None:
        choice.reason = f"gpu unavailable ({gpu_unavailable}); training's auto uses cpu without a probe"
    kept = "dataloader_cpu_decode" if choice.path == "cpu" else "gpu_decode"
    return VariantRow("input", "decode_auto", extra={"choice": choice.path, "same_as": kept,
                                                     "reason": choice.reason, "step_ms": choice.step_ms,
                                                     "data_wait_pct": choice.data_wait_pct})


# --- model-side variants on synthetic batches ---------------------------------------------------
def _synthetic_rows(ctx, group: str, variants: list[tuple[str, dict]]) -> list[VariantRow]:
    rows = []
    for name, options in variants:
        skip = options.pop("skip", "")
        if skip:
            rows.append(VariantRow(group, name, skipped=skip))
            continue
        step = ctx.train_step(**options)
        batch = synthetic_batch(step.model.cfg if hasattr(step.model, "cfg") else ctx.job.model,
                                ctx.batch_size, ctx.device)
        result = run_steps(cycle(lambda: [batch]), synthetic_to_device, step, ctx.device, ctx.steps, ctx.warmup,
                           hooks=not step_is_compiled(step))
        rows.append(_row(group, name, result, **{k: v for k, v in options.items() if k != "model"}))
    return with_speedups(rows)


def fusion_precision_variants(ctx) -> list[VariantRow]:
    bf16_ok = ctx.device.type == "cpu" or torch.cuda.is_bf16_supported()
    return _synthetic_rows(ctx, "fusion_precision", [
        ("reference_fp32", {"model": {"fusion": "reference", "fusion_layers": 0}, "precision": "fp32",
                            "weights": "fp32", **EAGER}),
        ("fused_fp32", {"model": {"fusion": "fused", "fusion_layers": 0}, "precision": "fp32", "weights": "fp32",
                        **EAGER}),
        ("fused_bf16", {"model": {"fusion": "fused", "fusion_layers": 0}, "precision": "bf16",
                        "weights": "fp32", **EAGER, "skip": "" if bf16_ok else "bf16 not supported on this GPU"}),
        # the model itself in bf16, AdamW on fp32 copies (train.weights=bf16)
        ("fused_bf16_weights", {"model": {"fusion": "fused", "fusion_layers": 0}, "precision": "bf16",
                                "weights": "bf16", **EAGER, "skip": "" if bf16_ok else "bf16 not supported on this GPU"}),
    ])


def compile_variants(ctx) -> list[VariantRow]:
    skip = ""
    if ctx.device.type != "cuda" and not ctx.cfg.compile_on_cpu:
        skip = "CPU run: torch.compile takes longer than the whole CPU budget (pass --compile-on-cpu)"
    graph_skip = skip or ("" if ctx.device.type == "cuda" else "needs CUDA (the step captured as a CUDA graph)")
    return _synthetic_rows(ctx, "compile", [
        ("eager", EAGER), ("compile", {**EAGER, "compile": True, "skip": skip}),
        # the whole step (forward, backward, clipping, AdamW) as one CUDA graph (train.step_graph)
        ("compile_step_graph", {"compile": True, "step_graph": True, "flat_update": False, "skip": graph_skip}),
    ])


def monitor_overhead(ctx) -> list[VariantRow]:
    """Step time with the hardware monitor off and on, in alternating blocks (drift cancels)."""
    step = ctx.train_step()
    batch = synthetic_batch(ctx.job.model, ctx.batch_size, ctx.device)
    sync = torch.cuda.synchronize if ctx.device.type == "cuda" else (lambda: None)

    def block(n):
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            step(*batch)
        sync()  # host-device sync: the block ends when the device is done
        return time.perf_counter() - t0

    block(ctx.warmup)
    per_block = max(ctx.steps, 5)
    off_s = on_s = 0.0
    samples = {"off": 0, "on": 0}
    for _ in range(2):
        off_s += block(per_block)
        samples["off"] += per_block * ctx.batch_size
        # start/stop (a fork, a pipe) happen once per run, outside the timed steps: what is
        # measured is the steady-state cost of sampling while training
        monitor = HardwareMonitor(interval_s=ctx.cfg.monitor_interval_s).start()
        time.sleep(2 * ctx.cfg.monitor_interval_s)  # sampling under way before timing starts
        on_s += block(per_block)
        monitor.stop()
        samples["on"] += per_block * ctx.batch_size
    rows = [VariantRow("monitor_overhead", "monitor_off", samples["off"] / off_s, 1e3 * off_s / (2 * per_block)),
            VariantRow("monitor_overhead", "monitor_on", samples["on"] / on_s, 1e3 * on_s / (2 * per_block))]
    rows[1].extra["overhead_pct"] = 100 * (on_s - off_s) / off_s
    rows[1].extra["interval_s"] = ctx.cfg.monitor_interval_s
    return with_speedups(rows)


VARIANTS = {
    "input": input_variants,
    "fusion_precision": fusion_precision_variants,
    "compile": compile_variants,
    "monitor_overhead": monitor_overhead,
}
