"""GELU kernels against the memory ceiling: torch's erf GELU vs the polynomial-erf one, one run.

Both compiled by Inductor, at the shapes of ``base``'s MLP activations at batch 128 (ViT:
128 x 197 tokens x 3,072; BERT: 128 x 128 x 3,072), bf16. Rows per shape:

- ``copy`` (``x * 2``: one read, one write) and ``mul`` (``g * x``: two reads, one write): the
  bandwidth a pointwise kernel of the forward's and of the backward's bytes reaches here;
- ``erf_fwd`` / ``erf_bwd``: ``F.gelu`` and ``aten.gelu_backward`` (libdevice ``erf``, ``exp``);
- ``poly_fwd`` / ``poly_bwd``: ``mmscale.model.gelu`` (erf from a rational polynomial);
- accuracy: the share of each compiled GELU kernel's bf16 results that differ from the float64
  value rounded to bf16 (the same inputs), torch's and ours;
- ``erf_mlp`` / ``poly_mlp``: a ViT MLP (Linear 768->3072, GELU, Linear 3072->768) forward and
  backward, bf16 weights: the same kernels as they sit between the matmuls, with the fc1 bias
  gradient's reduction.

Gives milliseconds per call (median over rounds), the counted bytes and bandwidth, and the
ratio of each poly row to its erf row. If the erf rows already run at the copy rows' bandwidth,
the polynomial cannot pay; if they run well below it, the arithmetic sets their time.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from mmscale.model.gelu import ErfPolyGELU, gelu_erf_poly, gelu_erf_poly_backward

SHAPES = {"vit": (128 * 197, 3072), "bert": (128 * 128, 3072)}
SMOKE_SHAPES = {"vit": (4 * 197, 256), "bert": (4 * 32, 256)}
MLP_WIDTH = 768


def rows_for(shape, device, compile_fn, smoke: bool):
    """{row name: (zero-argument call, counted bytes per call)} for one activation shape."""
    tokens, width = shape
    x = torch.randn(tokens, width, device=device, dtype=torch.bfloat16)
    g = torch.randn_like(x)
    elem = x.numel() * x.element_size()
    fns = {
        "copy": (compile_fn(lambda a: a * 2), (x,), 2 * elem),
        "mul": (compile_fn(lambda a, b: a * b), (g, x), 3 * elem),
        "erf_fwd": (compile_fn(F.gelu), (x,), 2 * elem),
        "poly_fwd": (compile_fn(gelu_erf_poly), (x,), 2 * elem),
        "erf_bwd": (compile_fn(torch.ops.aten.gelu_backward), (g, x), 3 * elem),
        "poly_bwd": (compile_fn(gelu_erf_poly_backward), (g, x), 3 * elem),
    }
    rows = {name: ((lambda f=f, a=a: f(*a)), nbytes) for name, (f, a, nbytes) in fns.items()}
    # how often each compiled kernel's bf16 result differs from the true value rounded to bf16
    # (float64 reference): the GPU's approximate rsqrt/exp2 must not cost accuracy
    truth = {"fwd": F.gelu(x.double()).bfloat16(), "bwd": torch.ops.aten.gelu_backward(g.double(), x.double()).bfloat16()}
    accuracy = {name: (fns[name][0](*fns[name][1]) != truth[name[-3:]]).float().mean().item()
                for name in ("erf_fwd", "poly_fwd", "erf_bwd", "poly_bwd")}
    hidden = MLP_WIDTH if not smoke else 64
    inputs = torch.randn(tokens, hidden, device=device, dtype=torch.bfloat16, requires_grad=True)
    for name, act in (("erf_mlp", nn.GELU()), ("poly_mlp", ErfPolyGELU())):
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(hidden, width), act, nn.Linear(width, hidden)).to(device, torch.bfloat16)
        loss = compile_fn(lambda m=mlp: m(inputs).float().square().mean())

        def step(m=mlp, loss=loss):
            m.zero_grad(set_to_none=True)  # no gradient accumulation kernels in the timing
            inputs.grad = None
            loss().backward()  # Inductor's compiled backward

        # counted: the activation-sized traffic (GELU forward 2, backward 3, the bias-gradient read 1)
        rows[name] = (step, 6 * elem)
    return rows, accuracy


def time_rows(rows: dict, sync, iters: int, rounds: int) -> dict[str, float]:
    """Median milliseconds per call of each row; rows alternate inside every round."""
    for call, _ in rows.values():  # warm-up: compile and autotune
        for _ in range(3):
            call()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, (call, _) in rows.items():
            sync()
            start = time.perf_counter()
            for _ in range(iters):
                call()
            sync()
            samples[name].append(1000 * (time.perf_counter() - start) / iters)
    return {name: statistics.median(s) for name, s in samples.items()}


def bench_gelu_kernels(device: torch.device, iters: int, rounds: int, smoke: bool = False,
                       compiled: bool = True) -> dict:
    """Every row at each shape (``SMOKE_SHAPES`` with ``smoke``): ms per call, counted bytes, GB/s,
    each poly row's speed-up over its erf row, and the bf16 accuracy of each GELU kernel."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    compile_fn = torch.compile if compiled else (lambda f: f)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = {"device": name, "torch": torch.__version__, "compiled": compiled,
              "iters": iters, "rounds": rounds, "shapes": {}}
    for shape_name, shape in (SMOKE_SHAPES if smoke else SHAPES).items():
        rows, accuracy = rows_for(shape, device, compile_fn, smoke)
        ms = time_rows(rows, sync, iters, rounds)
        table = {}
        for row, (_, nbytes) in rows.items():
            table[row] = {"ms": ms[row], "bytes": nbytes, "gb_per_s": nbytes / (ms[row] / 1000) / 1e9}
            if row in accuracy:
                table[row]["bf16_off_truth"] = accuracy[row]
        for kind in ("fwd", "bwd", "mlp"):
            table[f"poly_{kind}"]["speedup_vs_erf"] = ms[f"erf_{kind}"] / ms[f"poly_{kind}"]
        result["shapes"][shape_name] = {"tokens": shape[0], "width": shape[1], "rows": table}
    return result


def format_gelu(result: dict) -> str:
    lines = [f"{result['device']}, torch {result['torch']}, bf16, {'compiled' if result['compiled'] else 'eager'}",
             f"{'shape':<6}{'row':<10}{'ms/call':>10}{'GB counted':>12}{'GB/s':>10}{'poly/erf':>10}"
             f"{'bf16 off truth':>16}"]
    for shape_name, shape in result["shapes"].items():
        for row, r in shape["rows"].items():
            ratio = f"{r['speedup_vs_erf']:.3f}x" if "speedup_vs_erf" in r else ""
            lines.append(f"{shape_name:<6}{row:<10}{r['ms']:>10.4f}{r['bytes'] / 1e9:>12.3f}"
                         f"{r['gb_per_s']:>10.0f}{ratio:>10}"
                         + (f"{100 * r['bf16_off_truth']:>15.2f}%" if "bf16_off_truth" in r else ""))
    lines.append("poly/erf: the erf row's time over the poly row's (> 1: the polynomial is faster); bf16 off truth:\n"
                 "share of results that differ from the float64 value rounded to bf16")
    return "\n".join(lines)
