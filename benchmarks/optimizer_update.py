"""The optimizer update alone: eager (gather, clip, fused AdamW, write-back) against the same
update compiled as one function (``train.compile_optimizer``) and over flat buffers
(``train.flat_update``), in one run.

``base``'s parameters in bf16 with fp32 copies (``train.weights=bf16``), random gradients, clip
1.0. On CUDA each variant is captured as a CUDA graph and replayed, as under
``train.step_graph``, so launch costs count as they do there; on CPU the calls are timed as they
are. Prints each variant's milliseconds per update, the bytes it must move (counted: 52 B per
parameter eager, 30 compiled, 34 flat) and the effective bandwidth, and the ratios to the eager update.

Each variant runs in its own child process, one after the other, unless ``--in-process``: with
the eager and the compiled update captured in one CUDA process, the first replay failed with an
illegal memory access (torch 2.11, H200; cause not found). So the rounds of different variants
do not alternate, and drift between the processes does not cancel.

    PYTHONPATH=src python3 benchmarks/optimizer_update.py --out runs/optimizer_update
    PYTHONPATH=src python3 benchmarks/optimizer_update.py --preset tiny --device cpu --iters 3 --out runs/ou_cpu
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

VARIANTS = {
    "eager": None,  # MasterWeightAdamW: gather (bf16 -> fp32 buffers), clip_grad_norm_, fused AdamW, copy back
    "compiled": {},
    "compiled_combo": {"combo_kernels": True},  # Inductor groups the per-tensor kernels into fewer launches
    "compiled_tuned": {"coordinate_descent_tuning": True},  # block sizes timed per kernel (long compile)
    "flat": None,  # FlatMasterAdamW: gradients into one flat buffer, norm, one pass per group
}
DEFAULT_VARIANTS = ("eager", "compiled", "flat")
# flat: gradient copy 2 + 2, norm 2, the pass 28 (the bf16 gradient, copy, moments; copy, moments, weight)
BYTES_PER_PARAM = {"eager": 52, "compiled": 30, "compiled_combo": 30, "compiled_tuned": 30, "flat": 34}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--iters", type=int, default=50, help="timed updates per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (drift cancels)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="from " + ",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("runs/optimizer_update"))
    parser.add_argument("--in-process", action="store_true", help="all variants in this process, rounds alternating")
    return parser.parse_args(argv)


def build(name: str, args, device):
    """(update function, parameter count) for one variant, its gradients in place."""
    import torch

    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig, MultimodalModel
    from mmscale.train.compiled_update import CompiledAdamW
    from mmscale.train.flat_update import FlatMasterAdamW
    from mmscale.train.master_weights import MasterWeightAdamW
    from mmscale.train.optim import build_optimizer

    torch.manual_seed(0)
    model = MultimodalModel(load_config(ModelConfig, preset=args.preset, section="model")).to(device, torch.bfloat16)
    for param in model.parameters():
        param.grad = torch.randn_like(param)
    compiled = VARIANTS[name] is not None
    if name == "flat":
        flat = FlatMasterAdamW(model, lambda m: build_optimizer(m, 1e-4, 0.05, capturable=True))

        def update():
            flat.clip_and_step(1.0)
        return update, sum(p.numel() for p in model.parameters())
    # eager: the fused AdamW kernel, as training runs it (train.fused_adamw, CUDA and CPU)
    optimizer = MasterWeightAdamW(model, lambda m: build_optimizer(
        m, 1e-4, 0.05, fused=not compiled, capturable=device.type == "cuda" or compiled))
    if compiled:
        optimizer = CompiledAdamW(optimizer, inductor_options=VARIANTS[name])

        def update():
            optimizer.clip_and_step(1.0)
    else:
        def update():
            optimizer.gather_grads()
            torch.nn.utils.clip_grad_norm_(optimizer.masters, 1.0)
            optimizer.step()
    return update, sum(p.numel() for p in model.parameters())


def graphed(update, device):
    """On CUDA: warm up on a side stream, capture once, return the replay; elsewhere the call."""
    import torch

    if device.type != "cuda":
        update()
        return update
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            update()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        update()
    return graph.replay


def timed_ms(run, iters: int, sync) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        run()
    sync()
    return (time.perf_counter() - start) * 1000 / iters


def in_children(args, names: list[str]) -> tuple[list[dict], int]:
    """Each variant's rows from a child process of this script, and the parameter count."""
    import subprocess
    import sys

    rows, params = [], 0
    for name in names:
        out = args.out / name
        child = [sys.executable, __file__, "--preset", args.preset, "--device", args.device, "--iters",
                 str(args.iters), "--rounds", str(args.rounds), "--variants", name, "--out", str(out)]
        subprocess.run(child, check=True)
        result = json.loads((out / "optimizer_update.json").read_text())
        rows.extend(result["rows"])
        params = result["params"]
    return rows, params


def in_this_process(args, names: list[str], device) -> tuple[list[dict], int]:
    """Every variant built and captured here, then timed in alternating rounds."""
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    runs, params, setup_s = {}, 0, {}
    for name in names:
        start = time.perf_counter()
        update, params = build(name, args, device)
        runs[name] = graphed(update, device)
        setup_s[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: ready in {setup_s[name]} s", flush=True)
    times = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            times[name].append(timed_ms(runs[name], args.iters, sync))
    rows = []
    for name in names:
        ms = statistics.median(times[name])
        gigabytes = BYTES_PER_PARAM[name] * params / 1e9
        rows.append({"variant": name, "ms": round(ms, 3), "rounds_ms": [round(t, 3) for t in times[name]],
                     "counted_gb": round(gigabytes, 2), "tb_per_s": round(gigabytes / ms, 2), "setup_s": setup_s[name]})
    return rows, params


def main(argv=None) -> dict:
    import torch

    args = parse(argv)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown or not names:
        raise SystemExit(f"unknown or no variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    separate = len(names) > 1 and not args.in_process
    rows, params = in_children(args, names) if separate else in_this_process(args, names, device)
    eager = next((r["ms"] for r in rows if r["variant"] == "eager"), None)
    ratios = {f"{r['variant']}_speedup_over_eager": round(eager / r["ms"], 3) for r in rows if eager and r["variant"] != "eager"}
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"{gpu}, torch {torch.__version__}, preset {args.preset}, {params / 1e6:.1f} M parameters"
          + (", one process per variant" if separate else ""))
    print(f"{'variant':<16} {'ms/update':>10} {'counted GB':>11} {'TB/s':>6} {'setup s':>8}")
    for r in rows:
        print(f"{r['variant']:<16} {r['ms']:>10.3f} {r['counted_gb']:>11.2f} {r['tb_per_s']:>6.2f} {r['setup_s']:>8.1f}")
    for key, value in ratios.items():
        print(f"{key}: {value:.3f}x")
    result = {"device": gpu, "torch": torch.__version__, "preset": args.preset, "params": params,
              "iters": args.iters, "rounds": args.rounds, "process_per_variant": separate, "rows": rows,
              "ratios": ratios}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "optimizer_update.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
