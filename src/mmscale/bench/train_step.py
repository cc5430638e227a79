"""Training-step throughput: the reference design, ours (what ``mmscale train`` runs) and the
Hugging Face BLIP ITM peer, on the same synthetic device batch in one process.

Rows: ``reference_fp32`` is the seed's design as its code runs it (sequence-first
``nn.MultiheadAttention`` fusion, timm's convolution patch embedding, torch's GELU, fp32, TF32
off, eager); ``reference_bf16_compile`` is the same design under bf16 autocast and
``torch.compile``; ``ours`` is ``build_run`` over the preset's job with its ``auto`` switches
resolved for this device (``KEY=VALUE`` overrides make an A/B row); ``hf_blip_itm`` is
``BlipForImageTextRetrieval`` from config, bf16 autocast. Every row uses ``build_run`` except the
peer; each row is timed with a device sync per step (median) and back to back (pipelined).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mmscale import stats
from mmscale.bench.kernel_time import profile_steps
from mmscale.config.load import load_config
from mmscale.train.build import build_run
from mmscale.train.config import TrainJob
from mmscale.train.flops import count_train_flops, mfu, peak_tflops
from mmscale.train.runtime import apply_process_settings, resolve_runtime
from mmscale.train.synthetic import synthetic_batch

ROWS = ("reference_fp32", "reference_bf16_compile", "ours", "hf_blip_itm")
# the seed's model: its fusion, timm's patch convolution and torch's GELU
REFERENCE_MODEL = ["model.fusion=reference", "model.fusion_layers=0", "model.patch_embed=conv", "model.gelu=erf"]
REFERENCE_TRAIN = {
    "reference_fp32": ["train.precision=fp32", "train.weights=fp32", "train.compile=false"],
    "reference_bf16_compile": ["train.precision=bf16", "train.weights=fp32", "train.compile=true"],
}
ONE_PROCESS_OFF = ["train.step_graph=false", "train.flat_update=false"]  # not in the reference design


@dataclass
class StepRow:
    variant: str
    batch: int
    device: str
    status: str = "ok"  # ok | oom | error: ...
    runtime: str = ""  # what the row's switches resolved to (Runtime.describe)
    steps: int = 0
    step_ms: float = 0.0  # median over the timed steps, each ending in a device sync
    samples_per_s: float = 0.0
    samples_per_s_pipelined: float = 0.0  # the steps back to back, one sync at the end
    gflops_per_sample: float = 0.0  # FlopCounterMode, forward + backward
    mfu: float | None = None
    peak_gpu_gib: float = 0.0
    warmup_s: float = 0.0  # compile and capture happen here
    kernels: dict | None = field(default=None)  # --kernels: device ms per step by kernel kind


@dataclass
class BenchSpec:
    preset: str = "base"
    batch: int = 128
    steps: int = 30
    warmup: int = 8
    rows: tuple = ROWS
    device: str = "auto"
    overrides: tuple = ()  # KEY=VALUE over the preset, for every row (model.*) or ours (train.*)
    kernels: int = 0  # profile this many more steps per row for a kernel breakdown


def job_for(spec: BenchSpec, row: str) -> TrainJob:
    extra = list(spec.overrides) + [f"train.batch_size={spec.batch}", f"train.device={spec.device}"]
    if row in REFERENCE_TRAIN:
        extra += REFERENCE_MODEL + REFERENCE_TRAIN[row] + ONE_PROCESS_OFF
    return load_config(TrainJob, preset=spec.preset, overrides=extra)


def run_row(spec: BenchSpec, row: str, peak: float | None) -> StepRow:
    """One row, its failure recorded in the row (an OOM or error must not lose the others)."""
    _free()
    device = resolve_runtime(job_for(spec, "ours").train).device
    try:
        if row == "hf_blip_itm":
            return _blip_row(spec, device, peak)
        return _model_row(spec, row, peak)
    except torch.OutOfMemoryError:
        return StepRow(row, spec.batch, str(device), status="oom")
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        return StepRow(row, spec.batch, str(device), status=f"error: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        _free()


def _model_row(spec: BenchSpec, row: str, peak) -> StepRow:
    job = job_for(spec, row)
    runtime = resolve_runtime(job.train)
    apply_process_settings(runtime)
    tf32 = row != "reference_fp32"  # the seed runs torch's defaults: no TF32
    with _tf32(runtime.device, tf32):
        run = build_run(job, runtime, schedule=False, compile_dynamic=False,
                        graph_warmup_steps=max(1, spec.warmup - 2))
        batch = synthetic_batch(job.model, spec.batch, runtime.device)
        flops = count_train_flops(run.model, *batch, runtime.precision.autocast())
        out = StepRow(row, spec.batch, str(runtime.device), runtime=runtime.describe())
        return measure(out, lambda: run.step(*batch), flops, spec, runtime.device, peak)


def _blip_row(spec: BenchSpec, device, peak) -> StepRow:
    """BLIP's ITM head trained as its users would: bf16 autocast, AdamW, eager."""
    from transformers import BlipConfig, BlipForImageTextRetrieval  # the peer: imported only for its row

    cfg = job_for(spec, "ours").model
    vision = dict(image_size=cfg.image_size, patch_size=cfg.image_patch_size or 16)
    text = dict(max_position_embeddings=max(512, cfg.max_text_len))
    if spec.preset == "tiny":
        small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
        vision.update(small)
        text.update(small, encoder_hidden_size=64)
    torch.manual_seed(0)
    model = BlipForImageTextRetrieval(BlipConfig(vision_config=vision, text_config=text)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    pixels, ids, mask = synthetic_batch(cfg, spec.batch, device)
    labels = torch.ones(spec.batch, dtype=torch.long, device=device)

    def loss_fn():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(input_ids=ids, pixel_values=pixels, attention_mask=mask, use_itm_head=True)
        return F.cross_entropy(out.itm_score.float(), labels)

    def step():
        loss_fn().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn().backward()
    model.zero_grad(set_to_none=True)
    return measure(StepRow("hf_blip_itm", spec.batch, str(device), runtime="bf16 autocast, eager"), step,
                   counter.get_total_flops(), spec, device, peak)


def measure(row: StepRow, step, flops: int, spec: BenchSpec, device, peak) -> StepRow:
    """Warm up (compile, capture), then time synced steps and pipelined steps of the same row."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    for _ in range(spec.warmup):
        step()
    sync()
    row.warmup_s = time.perf_counter() - started
    times = []
    for _ in range(spec.steps):
        t0 = time.perf_counter()
        step()
        sync()  # host-device sync: the step's time includes its kernels
        times.append(1000 * (time.perf_counter() - t0))
    t0 = time.perf_counter()
    for _ in range(spec.steps):
        step()
    sync()
    pipelined_s = (time.perf_counter() - t0) / spec.steps
    row.steps, row.step_ms = len(times), stats.median(times)
    row.samples_per_s = row.batch / (row.step_ms / 1000)
    row.samples_per_s_pipelined = row.batch / pipelined_s
    row.gflops_per_sample = flops / row.batch / 1e9
    row.mfu = mfu(flops, 1, row.step_ms / 1000, peak)
    if device.type == "cuda":
        row.peak_gpu_gib = torch.cuda.max_memory_allocated(device) / 2**30
    if spec.kernels:
        row.kernels = profile_steps(step, sync, spec.kernels)
    return row


def ratios(rows: list[StepRow]) -> dict[str, float]:
    """``ours`` over each other row that ran (pure function of the rows)."""
    ok = {r.variant: r.samples_per_s for r in rows if r.status == "ok" and r.samples_per_s}
    if "ours" not in ok:
        return {}
    return {f"ours_over_{name}": ok["ours"] / value for name, value in ok.items() if name != "ours"}


def bench_train_step(spec: BenchSpec, on_row=None) -> dict:
    """Every row of ``spec`` in order; ``on_row(row)`` sees each as it ends."""
    unknown = sorted(set(spec.rows) - set(ROWS))
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(ROWS)}")
    device = resolve_runtime(job_for(spec, "ours").train).device
    peak = peak_tflops(device)
    rows = []
    for name in spec.rows:
        rows.append(run_row(spec, name, peak))
        if on_row:
            on_row(rows[-1])
    return {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "spec": dataclasses.asdict(spec), "peak_tflops": peak,
            "rows": [dataclasses.asdict(r) for r in rows], "ratios": ratios(rows)}


def _tf32(device, enabled: bool):
    if device.type != "cuda":
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    stack.callback(lambda: (setattr(torch.backends.cuda.matmul, "allow_tf32", before[0]),
                            setattr(torch.backends.cudnn, "allow_tf32", before[1])))
    return stack


def _free() -> None:
    gc.collect()
    torch._dynamo.reset()  # a row compiles its own model; no graph of an earlier row is reused
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
