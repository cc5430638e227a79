"""Training-step throughput: the reference design vs ours vs Hugging Face BLIP, in one run.

Synthetic device tensors (no data loading), one optimizer step = forward + backward + AdamW, at
the same batch for every row. Rows (``base`` preset, batch 128 on one GPU):

- ``reference_fp32``: seed fusion (sequence-first ``nn.MultiheadAttention``), fp32, TF32 off,
  default (foreach) AdamW: what the article's code does.
- ``reference_bf16``: the same under bf16 autocast.
- ``reference_bf16_compile``: the same under ``torch.compile``.
- ``ours``: fused SDPA fusion (ITM fuses the [CLS] query only) + bf16 autocast +
  ``torch.compile`` + fused AdamW + TF32.
- ``hf_blip_itm``: ``BlipForImageTextRetrieval`` (ITM head, random init from config, 224 px,
  bf16 autocast) as the peer users would reach for.
- ``ours_fp8`` (only when named in ``--variants``): ours with torchao FP8 matmuls (``--fp8``,
  ``--fp8-layers``).
- ``ours_bf16_weights`` (only when named): ours with a bf16 model and fp32 master weights in
  AdamW instead of autocast (``mmscale.train.master_weights``): activations and the residual
  stream in bf16. ``--attention`` pins every row's SDPA kernel, to compare kernels.
- ``ours_graphs``, ``ours_bf16_weights_graphs`` (only when named): the same two compiled with
  ``mode="reduce-overhead"``: the forward and backward replay as CUDA graphs, no per-kernel
  launches from the host.
- ``ours_step_graph``, ``ours_bf16_weights_step_graph`` (only when named): the whole step
  (forward, backward, clipping, AdamW) captured once as one CUDA graph and replayed
  (``mmscale.train.step_graph``, ``train.step_graph``).
- ``ours_bf16_weights_step_graph_cdt`` (only when named): that row compiled with Inductor's
  ``coordinate_descent_tuning`` (each generated kernel's block sizes tuned by timing them, a
  longer compile): do the memory-bound GELU/LayerNorm kernels run nearer the bandwidth?
- ``ours_bf16_weights_step_graph_compiled_adamw``, ``..._cdt_compiled_adamw`` (only when named):
  those rows with clipping and AdamW compiled as one function (``train.compile_optimizer``):
  two passes over the parameters instead of five, the fp32 gradients never written.
- ``ours_bf16_weights_step_graph_erf_poly``, ``..._cdt_erf_poly`` (only when named): those rows
  with ``model.gelu=erf_poly``: erf in the GELU kernels from a rational polynomial
  (``mmscale.model.gelu``), fewer instructions per element, the same function within 1.5e-7;
  ``..._erf_poly_pdl`` adds Inductor's Programmatic Dependent Launch (``triton.enable_pdl``:
  a Triton kernel's launch overlaps the end of the kernel before it).
- ``..._erf_poly_no_mix_order``, ``..._erf_poly_split64`` (only when named): the LayerNorm
  backward's weight and bias gradients. By default Inductor computes them in the row kernel as
  partial sums over 16 rows (``triton.mix_order_reduction``), then sums the partials with one
  ATen ``sum`` per gradient (123 small reductions per step on an H200, each with a memset,
  most with a cast to bf16); the first row turns that off (separate column reductions), the second makes the
  partials 64 rows tall (``triton.mix_order_reduction_split_size``).
- ``ours_bf16_weights_step_graph_erf_poly_flat`` (only when named): that row with the update
  over flat buffers (``train.flat_update``,
  ``mmscale.train.flat_update``): 34 B per parameter in a few long kernels, where the eager
  update moves 52 B in ~60 multi-tensor kernels. ``..._erf_poly_flat_patch_mm`` also computes
  the patch embedding as one matmul (``model.patch_embed=matmul``) instead of cuDNN's
  convolution; ``..._erf_poly_no_mix_order_flat_patch_mm`` adds ``triton.mix_order_reduction``
  off (the LayerNorm gradients without the 123 eager partial sums).
- ``ours_bf16_weights_step_graph_max_autotune`` (only when named): compiled with Inductor's
  ``max_autotune`` alone: each matmul shape timed as cuBLAS and as Triton templates with the
  bias and GELU fused into the chosen kernel's epilogue.

``--kernels N`` profiles N more steps of every row and prints where its device time goes:
milliseconds per step of matmuls, attention, norms, GELU, other elementwise kernels and the
optimizer, and the host gap (wall time in which no kernel ran); see ``mmscale.bench.kernel_time``.
``--kernels-top K`` lists the K longest kernels by name, each with its launch grid, the host ops
that launched it and, for a name that several ops launch (every memset is "Memset (Device)"),
the split by op (in a step-graph row every kernel names the graph's replay: profile the row
without ``_step_graph`` to see which code asks for a kernel).

FLOPs per step are counted once per row with ``FlopCounterMode``; MFU is over the bf16 dense
peak of the GPU (table in ``mmscale.train.flops``) or ``--peak-tflops``.

    PYTHONPATH=src python3 benchmarks/train_step.py --out runs/train_step          # GPU, base
    PYTHONPATH=src python3 benchmarks/train_step.py --smoke --out runs/train_step_smoke  # CPU smoke

The table is printed last; ``--out DIR`` writes ``train_step.json`` (rows + ratios).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from mmscale.train.compile_tuning import inductor_settings

VARIANTS = ("reference_fp32", "reference_bf16", "reference_bf16_compile", "ours", "hf_blip_itm")
EXTRA_VARIANTS = ("ours_fp8", "ours_bf16_weights", "ours_graphs", "ours_bf16_weights_graphs",
                  "ours_step_graph", "ours_bf16_weights_step_graph",
                  "ours_bf16_weights_step_graph_cdt",
                  "ours_bf16_weights_step_graph_max_autotune",
                  "ours_bf16_weights_step_graph_compiled_adamw",
                  "ours_bf16_weights_step_graph_cdt_compiled_adamw",
                  "ours_bf16_weights_step_graph_erf_poly", "ours_bf16_weights_step_graph_erf_poly_pdl",
                  "ours_bf16_weights_step_graph_cdt_erf_poly",
                  "ours_bf16_weights_step_graph_erf_poly_no_mix_order",
                  "ours_bf16_weights_step_graph_erf_poly_split64",
                  "ours_bf16_weights_step_graph_erf_poly_flat",
                  "ours_bf16_weights_step_graph_erf_poly_no_mix_order_flat_patch_mm",
                  "ours_bf16_weights_step_graph_erf_poly_flat_patch_mm")  # run only when named in --variants


@dataclass
class StepRow:
    variant: str
    batch: int
    device: str
    status: str = "ok"  # ok | oom | error: ... | skipped: ...
    steps: int = 0
    step_ms: float = 0.0  # median over the timed steps
    step_ms_p90: float = 0.0
    samples_per_s: float = 0.0
    samples_per_s_pipelined: float = 0.0  # steps back to back, one sync at the end (time_pipelined)
    gflops_per_sample: float = 0.0  # counted with FlopCounterMode, forward + backward
    tflops_per_s: float = 0.0
    mfu: float | None = None
    peak_gpu_gib: float = 0.0
    compile_s: float = 0.0  # warmup time (includes torch.compile's compilation)
    fp8_linears: int = 0  # linears running FP8 matmuls (--fp8)
    attention: str = "auto"  # SDPA backend pinned with --attention
    kernels: dict | None = None  # --kernels: device ms per step by kernel kind, host gap


@dataclass
class Settings:
    variant: str
    fusion: str
    precision: str
    compile: bool
    fused_adamw: bool
    tf32: bool
    fp8: bool = False
    bf16_weights: bool = False  # bf16 model, fp32 master copies in AdamW, no autocast
    compile_mode: str | None = None  # this row's torch.compile mode (else --compile-mode)
    step_graph: bool = False  # the whole step as one CUDA graph (needs CUDA; else uncaptured)
    inductor: tuple = ()  # (name, value) pairs of torch._inductor.config for this row's compile
    compile_optimizer: bool = False  # clipping + AdamW as one compiled function (train.compile_optimizer)
    flat_update: bool = False  # weights, copies, moments, gradients in flat buffers (train.flat_update)
    model: tuple = ()  # model overrides of this row, e.g. ("model.gelu=erf_poly",)


SETTINGS = {
    "reference_fp32": Settings("reference_fp32", "reference", "fp32", False, False, False),
    "reference_bf16": Settings("reference_bf16", "reference", "bf16", False, False, False),
    "reference_bf16_compile": Settings("reference_bf16_compile", "reference", "bf16", True, False, False),
    "ours": Settings("ours", "fused", "bf16", True, True, True),
    "ours_fp8": Settings("ours_fp8", "fused", "bf16", True, True, True, fp8=True),
    "ours_bf16_weights": Settings("ours_bf16_weights", "fused", "bf16", True, True, True, bf16_weights=True),
    "ours_graphs": Settings("ours_graphs", "fused", "bf16", True, True, True, compile_mode="reduce-overhead"),
    "ours_bf16_weights_graphs": Settings("ours_bf16_weights_graphs", "fused", "bf16", True, True, True,
                                         bf16_weights=True, compile_mode="reduce-overhead"),
    "ours_step_graph": Settings("ours_step_graph", "fused", "bf16", True, True, True, step_graph=True),
    "ours_bf16_weights_step_graph": Settings("ours_bf16_weights_step_graph", "fused", "bf16", True, True, True,
                                             bf16_weights=True, step_graph=True),
    "ours_bf16_weights_step_graph_cdt": Settings("ours_bf16_weights_step_graph_cdt", "fused", "bf16", True, True,
                                                 True, bf16_weights=True, step_graph=True,
                                                 inductor=(("coordinate_descent_tuning", True),)),
    # Triton matmul templates benchmarked against cuBLAS per shape, epilogues (bias, GELU) fused
    # into the chosen kernel: max-autotune without its coordinate-descent half
    "ours_bf16_weights_step_graph_max_autotune": Settings("ours_bf16_weights_step_graph_max_autotune", "fused", "bf16",
                                                          True, True, True, bf16_weights=True, step_graph=True,
                                                          inductor=(("max_autotune", True),)),
    "ours_bf16_weights_step_graph_compiled_adamw": Settings("ours_bf16_weights_step_graph_compiled_adamw", "fused",
                                                            "bf16", True, True, True, bf16_weights=True,
                                                            step_graph=True, compile_optimizer=True),
    "ours_bf16_weights_step_graph_cdt_compiled_adamw": Settings(
        "ours_bf16_weights_step_graph_cdt_compiled_adamw", "fused", "bf16", True, True, True, bf16_weights=True,
        step_graph=True, compile_optimizer=True, inductor=(("coordinate_descent_tuning", True),)),
    # erf in the GELU kernels from a rational polynomial (model.gelu=erf_poly): the same function
    "ours_bf16_weights_step_graph_erf_poly": Settings("ours_bf16_weights_step_graph_erf_poly", "fused", "bf16",
                                                      True, True, True, bf16_weights=True, step_graph=True,
                                                      model=("model.gelu=erf_poly",)),
    # Programmatic Dependent Launch: each Triton kernel may start while the one before it drains
    "ours_bf16_weights_step_graph_erf_poly_pdl": Settings(
        "ours_bf16_weights_step_graph_erf_poly_pdl", "fused", "bf16", True, True, True, bf16_weights=True,
        step_graph=True, model=("model.gelu=erf_poly",), inductor=(("triton.enable_pdl", True),)),
    "ours_bf16_weights_step_graph_cdt_erf_poly": Settings(
        "ours_bf16_weights_step_graph_cdt_erf_poly", "fused", "bf16", True, True, True, bf16_weights=True,
        step_graph=True, model=("model.gelu=erf_poly",), inductor=(("coordinate_descent_tuning", True),)),
    # the LayerNorm backward's weight/bias gradients: column reductions of their own, or taller partials
    "ours_bf16_weights_step_graph_erf_poly_no_mix_order": Settings(
        "ours_bf16_weights_step_graph_erf_poly_no_mix_order", "fused", "bf16", True, True, True, bf16_weights=True,
        step_graph=True, model=("model.gelu=erf_poly",), inductor=(("triton.mix_order_reduction", False),)),
    "ours_bf16_weights_step_graph_erf_poly_split64": Settings(
        "ours_bf16_weights_step_graph_erf_poly_split64", "fused", "bf16", True, True, True, bf16_weights=True,
        step_graph=True, model=("model.gelu=erf_poly",), inductor=(("triton.mix_order_reduction_split_size", 64),)),
    # the update over flat buffers (train.flat_update)
    "ours_bf16_weights_step_graph_erf_poly_flat": Settings(
        "ours_bf16_weights_step_graph_erf_poly_flat", "fused", "bf16", True, True, True, bf16_weights=True,
        step_graph=True, model=("model.gelu=erf_poly",), flat_update=True),
    # ... and the patch embedding as one matmul (model.patch_embed=matmul)
    "ours_bf16_weights_step_graph_erf_poly_flat_patch_mm": Settings(
        "ours_bf16_weights_step_graph_erf_poly_flat_patch_mm", "fused", "bf16", True, True, True, bf16_weights=True,
        step_graph=True, model=("model.gelu=erf_poly", "model.patch_embed=matmul"), flat_update=True),
    "ours_bf16_weights_step_graph_erf_poly_no_mix_order_flat_patch_mm": Settings(
        "ours_bf16_weights_step_graph_erf_poly_no_mix_order_flat_patch_mm", "fused", "bf16", True, True, True,
        bf16_weights=True, step_graph=True, model=("model.gelu=erf_poly", "model.patch_embed=matmul"),
        # what train.compile_mix_order_reduction=false sets for a training run
        inductor=tuple(inductor_settings(tuning=False, mix_order_reduction=False).items()), flat_update=True),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base", help="model preset (base on GPU)")
    parser.add_argument("--batch", type=int, default=128, help="samples per step, every row")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per row (compilation happens here)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated, from " + ",".join(VARIANTS + EXTRA_VARIANTS))
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="peak for MFU (default: GPU table)")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU smoke test: tiny sizes, batch 4, 2 steps, no compile rows")
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode for the compiled rows (e.g. max-autotune-no-cudagraphs)")
    parser.add_argument("--no-compile", action="store_true",
                        help="run the compile rows without torch.compile (their status says so)")
    parser.add_argument("--fp8", default="tensorwise", choices=["tensorwise", "rowwise"],
                        help="torchao float8 recipe of the ours_fp8 row")
    parser.add_argument("--fp8-layers", default="auto", choices=["auto", "all"],
                        help="ours_fp8: torchao's filter of the linears that pay, or every one that fits")
    parser.add_argument("--attention", default="auto", choices=["auto", "flash", "cudnn", "efficient"],
                        help="pin every row's SDPA to one backend (auto: torch picks)")
    parser.add_argument("--kernels", type=int, default=0, metavar="N",
                        help="after timing, profile N more steps per row and print device ms by kernel kind")
    parser.add_argument("--kernels-top", type=int, default=12, metavar="K",
                        help="with --kernels: list the K longest kernels by name (with launch grid)")
    parser.add_argument("--out", default=None, help="directory for train_step.json")
    parser.add_argument("overrides", nargs="*", help="model overrides, e.g. model.fusion_layers=2")
    args = parser.parse_args(argv)
    if args.smoke:
        args.preset, args.batch, args.no_compile = "tiny", 4, True
        args.steps, args.warmup = min(args.steps, 2), min(args.warmup, 1)
        args.overrides = ["model.image_size=32", "model.image_depth=2", "model.max_text_len=16",
                          "model.hidden_dim=64", "model.fusion_layers=0", *args.overrides]
    return args


def resolve_device(choice: str):
    import torch

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def time_steps(step, sync, warmup: int, steps: int) -> tuple[list[float], float]:
    """Per-step wall times in ms (each ends with a device sync) and the warmup's seconds.

    A sync after every step shows each step's time, and also leaves the device idle while the
    host prepares the next one; ``time_pipelined`` measures without it."""
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warmup_s = time.perf_counter() - started
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()  # host-device sync: the step's time must include its kernels
        times.append(1000 * (time.perf_counter() - t0))
    return times, warmup_s


def time_pipelined(step, sync, steps: int) -> float:
    """Mean ms per step over ``steps`` steps issued back to back, one sync at the end: how a
    training loop runs (it reads losses every few steps), the host queueing ahead of the device."""
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return 1000 * (time.perf_counter() - started) / steps


def finish_row(row: StepRow, times: list[float], flops: int, peak, device, warmup_s: float) -> StepRow:
    import torch

    from mmscale.train.flops import mfu

    row.steps = len(times)
    row.step_ms = statistics.median(times)
    row.step_ms_p90 = sorted(times)[int(0.9 * (len(times) - 1))]
    row.samples_per_s = row.batch / (row.step_ms / 1000)
    row.gflops_per_sample = flops / row.batch / 1e9
    row.tflops_per_s = flops / (row.step_ms / 1000) / 1e12
    row.mfu = mfu(flops, 1, row.step_ms / 1000, peak)
    row.compile_s = warmup_s
    if device.type == "cuda":
        row.peak_gpu_gib = torch.cuda.max_memory_allocated(device) / 1024**3
    return row


def run_ours_or_reference(settings: Settings, args, device, peak) -> StepRow:
    import torch

    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig, MultimodalModel
    from mmscale.train.flops import count_train_flops
    from mmscale.train.optim import build_optimizer
    from mmscale.train.precision import Precision
    from mmscale.train.step import TrainStep
    from mmscale.train.synthetic import synthetic_batch

    row = StepRow(settings.variant, args.batch, str(device))
    use_compile = settings.compile and not args.no_compile
    if settings.compile and not use_compile:
        row.status = "ok (compile off)"
    cfg = load_config(ModelConfig, preset=args.preset, section="model",
                      overrides=[*args.overrides, f"model.fusion={settings.fusion}", *settings.model])
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = settings.tf32
        torch.backends.cudnn.allow_tf32 = settings.tf32
    torch.manual_seed(0)
    model = MultimodalModel(cfg).to(device)
    if settings.fp8:
        from mmscale.train.fp8 import convert_linears_to_fp8

        row.fp8_linears = len(convert_linears_to_fp8(model, args.fp8, args.fp8_layers))
    fused = settings.fused_adamw and device.type == "cuda"
    graphed = settings.step_graph and device.type == "cuda"
    if settings.step_graph and not graphed:
        row.status = "ok (no CUDA: step not captured)"
    precision = Precision.resolve(settings.precision, device)
    compiled_update = settings.compile_optimizer and use_compile
    capturable = graphed or compiled_update
    if settings.bf16_weights:
        from mmscale.train.flat_update import FlatMasterAdamW
        from mmscale.train.master_weights import MasterWeightAdamW

        model.to(torch.bfloat16)
        masters = FlatMasterAdamW if settings.flat_update else MasterWeightAdamW
        optimizer = masters(model, lambda m: build_optimizer(m, 1e-4, 0.05, fused=fused and not settings.flat_update,
                                                             capturable=capturable or settings.flat_update))
        precision = Precision.resolve("fp32", device)  # no autocast: the model is bf16 already
    else:
        optimizer = build_optimizer(model, 1e-4, 0.05, fused=fused, capturable=capturable)
    if compiled_update:
        from mmscale.train.compiled_update import CompiledAdamW

        optimizer = CompiledAdamW(optimizer)
    pixels, ids, mask = synthetic_batch(cfg, args.batch, device)
    flops = count_train_flops(model, pixels, ids, mask, precision.autocast())
    step = TrainStep(model, optimizer, None, precision, compile=use_compile, grad_clip=1.0,
                     compile_mode=settings.compile_mode or args.compile_mode)
    if graphed:
        from mmscale.train.step_graph import graph_train_step

        step = graph_train_step(step, device, warmup_steps=max(1, args.warmup - 2))
    import torch._inductor.config as inductor_config

    if (settings.inductor or settings.model) and use_compile:
        # dynamo reuses a graph compiled for an earlier row's model of the same class (parameters
        # are graph inputs): without a reset this row could run that row's kernels
        torch._dynamo.reset()
    with inductor_config.patch(dict(settings.inductor)):  # read when the first steps compile
        return measure(row, lambda: step(pixels, ids, mask), flops, args, device, peak)


def measure(row: StepRow, step, flops: int, args, device, peak) -> StepRow:
    """Time the row's steps, then (``--kernels``) profile a few more for the kernel breakdown."""
    times, warmup_s = time_steps(step, lambda: _sync(device), args.warmup, args.steps)
    finish_row(row, times, flops, peak, device, warmup_s)
    row.samples_per_s_pipelined = row.batch / (time_pipelined(step, lambda: _sync(device), args.steps) / 1000)
    if args.kernels:
        from mmscale.bench.kernel_time import profile_steps

        row.kernels = profile_steps(step, lambda: _sync(device), args.kernels, top=args.kernels_top)
    return row


def build_blip(args, device):
    """BlipForImageTextRetrieval from config: ViT-B/16 at the preset's image size, BERT-base text."""
    from transformers import BlipConfig, BlipForImageTextRetrieval

    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig

    cfg = load_config(ModelConfig, preset=args.preset, section="model", overrides=args.overrides)
    vision = dict(image_size=cfg.image_size, patch_size=cfg.image_patch_size or 16)
    text = dict(max_position_embeddings=max(512, cfg.max_text_len))  # BLIP's vocab: 30524 (BERT + 2)
    if args.smoke:
        vision.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
        text.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                    encoder_hidden_size=64)
    config = BlipConfig(vision_config=vision, text_config=text)
    return BlipForImageTextRetrieval(config).to(device), cfg


def run_blip(args, device, peak) -> StepRow:
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from mmscale.train.synthetic import synthetic_batch

    row = StepRow("hf_blip_itm", args.batch, str(device))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    model, cfg = build_blip(args, device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    pixels, ids, mask = synthetic_batch(cfg, args.batch, device)
    labels = torch.ones(args.batch, dtype=torch.long, device=device)
    dtype = torch.bfloat16

    def loss_fn():
        with torch.autocast(device.type, dtype=dtype):
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
    return measure(row, step, counter.get_total_flops(), args, device, peak)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def attention_backend(choice: str):
    """Pin SDPA to one kernel for every row (``auto``: leave torch's choice)."""
    import contextlib

    from torch.nn.attention import SDPBackend, sdpa_kernel

    if choice == "auto":
        return contextlib.nullcontext()
    backend = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION}[choice]
    return sdpa_kernel([backend])


def run_variant(name: str, args, device, peak) -> StepRow:
    import torch

    _free(device)
    try:
        if name == "hf_blip_itm":
            return run_blip(args, device, peak)
        return run_ours_or_reference(SETTINGS[name], args, device, peak)
    except torch.OutOfMemoryError:
        return StepRow(name, args.batch, str(device), status="oom")
    except Exception as exc:  # one failing row must not lose the others' figures
        return StepRow(name, args.batch, str(device), status=f"error: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        _free(device)


def ratios(rows: list[StepRow]) -> dict[str, float]:
    """Each row's samples/s over the baselines' (pure function of the rows): ``ours`` over every
    other row, and each other ``ours_*`` row over the references and the peer it is measured against."""
    ok = {r.variant: r.samples_per_s for r in rows if r.status.startswith("ok") and r.samples_per_s}
    out = {}
    if "ours" in ok:
        out.update({f"ours_over_{name}": ok["ours"] / value for name, value in ok.items()
                    if name != "ours" and not name.startswith("ours_")})
    for name in (n for n in ok if n.startswith("ours_")):
        for base in ("reference_fp32", "reference_bf16_compile", "hf_blip_itm", "ours"):
            if base in ok:
                out[f"{name}_over_{base}"] = ok[name] / ok[base]
    return out


def format_table(rows: list[StepRow], ratio: dict[str, float]) -> str:
    lines = [f"{'variant':<28} {'samples/s':>10} {'pipelined':>10} {'step ms':>9} {'GFLOP/sample':>13} "
             f"{'TFLOP/s':>8} {'MFU':>6} {'peak GiB':>9}  status"]
    for r in rows:
        mfu = f"{100 * r.mfu:.1f}%" if r.mfu is not None else "-"
        lines.append(f"{r.variant:<28} {r.samples_per_s:>10.1f} {r.samples_per_s_pipelined:>10.1f} {r.step_ms:>9.1f} "
                     f"{r.gflops_per_sample:>13.2f} {r.tflops_per_s:>8.1f} {mfu:>6} {r.peak_gpu_gib:>9.1f}  {r.status}")
    for key, value in ratio.items():
        lines.append(f"{key}: {value:.2f}x")
    return "\n".join(lines)


def write_result(args, gpu: str, peak, rows: list[StepRow]) -> dict:
    """The result of the rows so far; written to ``--out`` as ``train_step.json``."""
    import torch

    result = {"device": gpu, "torch": torch.__version__, "preset": args.preset, "batch": args.batch,
              "peak_tflops": peak, "rows": [dataclasses.asdict(r) for r in rows], "ratios": ratios(rows)}
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "train_step.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    from mmscale.train.flops import peak_tflops

    device = resolve_device(args.device)
    peak = peak_tflops(device, args.peak_tflops)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANTS + EXTRA_VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    if not names:
        raise SystemExit(f"--variants names no row; known: {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = []
    with attention_backend(args.attention):
        for name in names:
            started = time.perf_counter()
            row = run_variant(name, args, device, peak)
            row.attention = args.attention
            rows.append(row)
            # each row as it ends, and the JSON so far: a run cut by a time limit keeps its finished rows
            print(f"[{len(rows)}/{len(names)}] {name}: {row.samples_per_s:,.1f} samples/s, {row.status}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            result = write_result(args, gpu, peak, rows)
    print(f"{gpu}, torch {torch.__version__}, preset {args.preset}, batch {args.batch}, peak {peak} TFLOP/s")
    print(format_table(rows, result["ratios"]))
    profiled = {r.variant: r.kernels for r in rows if r.kernels}
    if profiled:
        from mmscale.bench.kernel_time import format_breakdown

        print(format_breakdown(profiled))
    return result


if __name__ == "__main__":
    main()
