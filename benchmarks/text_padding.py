"""Captions padded to ``max_text_len`` (128, the loader's default) against padded to the batch's
longest caption rounded up to ``--multiple`` (``data.pad_to_longest=true data.pad_multiple=N``):
the same model, optimizer and captions (the synthetic set's), train steps timed in alternating
rounds in one process, with each row's counted FLOPs and the two ratios.

    PYTHONPATH=src python3 benchmarks/text_padding.py --out runs/text_padding      (GPU: base, batch 128, compiled)
    PYTHONPATH=src python3 benchmarks/text_padding.py --device cpu --batch 8 --steps 3 --rounds 2 --no-compile \\
        --out runs/text_padding_cpu                                                 (CPU: ratios only)

Masked padding changes nothing the fused model computes (a CPU test checks the losses), so the
step-time ratio is what the option buys on captions of this length. With compile, each length is
its own static graph (as in training with ``pad_multiple``), compiled in the warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--multiple", type=int, default=16, help="round the longest caption up to this")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (drift cancels)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per row (compilation)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/text_padding"))
    parser.add_argument("overrides", nargs="*", help="model overrides, e.g. model.fusion_layers=2")
    return parser.parse_args(argv)


def build(args):
    """(model config, device, one train step function, precision) for the preset."""
    import torch

    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig, MultimodalModel
    from mmscale.train.optim import build_optimizer
    from mmscale.train.precision import Precision
    from mmscale.train.step import TrainStep

    cuda = args.device != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    cfg = load_config(ModelConfig, preset=args.preset, section="model", overrides=list(args.overrides))
    torch.manual_seed(0)
    model = MultimodalModel(cfg).to(device)
    precision = Precision.resolve("auto", device)
    optimizer = build_optimizer(model, 1e-4, 0.05, fused=cuda)
    step = TrainStep(model, optimizer, None, precision, compile=not args.no_compile, grad_clip=1.0,
                     compile_dynamic=False)  # one static graph per length, as training with pad_multiple
    return cfg, device, model, step, precision


def batches(cfg, args, device) -> dict:
    """Row name -> (pixels, ids, mask) on the device: the same images and captions, two paddings."""
    import torch

    from mmscale.data.synth_scene import scene_caption
    from mmscale.data.tokenizer import load_tokenizer

    captions = [scene_caption(0, i) for i in range(args.batch)]
    tokenizer = load_tokenizer()
    pixels = torch.randn(args.batch, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(0))
    out = {}
    for name, kwargs in (("padded_to_max", {}), (f"longest_x{args.multiple}",
                                                 {"pad_to_longest": True, "pad_multiple": args.multiple})):
        ids, mask = tokenizer.encode_batch(captions, cfg.max_text_len, **kwargs)
        out[name] = (pixels.to(device), ids.to(device), mask.to(device))
    return out


def main(argv=None) -> int:
    args = parse(argv)
    import torch

    from mmscale.train.flops import count_train_flops

    cfg, device, model, step, precision = build(args)
    inputs = batches(cfg, args, device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rows = {name: {"row": name, "text_tokens": batch[1].shape[1], "times_ms": [],
                   "gflops_per_sample": count_train_flops(model, *batch, precision.autocast()) / args.batch / 1e9}
            for name, batch in inputs.items()}
    for name, batch in inputs.items():  # compile and warm each length before anything is timed
        started = time.perf_counter()
        for _ in range(args.warmup):
            step(*batch)
        sync()
        rows[name]["warmup_s"] = time.perf_counter() - started
    for _ in range(args.rounds):
        for name, batch in inputs.items():
            for _ in range(args.steps):
                t0 = time.perf_counter()
                step(*batch)
                sync()
                rows[name]["times_ms"].append(1000 * (time.perf_counter() - t0))
    for row in rows.values():
        row["step_ms"] = statistics.median(row["times_ms"])
        row["samples_per_s"] = args.batch / (row["step_ms"] / 1000)
    full, short = rows.values()
    summary = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "preset": args.preset, "batch": args.batch, "compile": not args.no_compile,
               "speedup": full["step_ms"] / short["step_ms"],
               "flops_ratio": short["gflops_per_sample"] / full["gflops_per_sample"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "text_padding.json").write_text(json.dumps({"summary": summary, "rows": list(rows.values())},
                                                           indent=1))
    print(f"{summary['device']}, {args.preset}, batch {args.batch}, compile {summary['compile']}")
    print(f"{'row':<16} {'tokens':>6} {'GFLOP/sample':>13} {'step ms':>9} {'samples/s':>10} {'warm-up s':>10}")
    for r in rows.values():
        print(f"{r['row']:<16} {r['text_tokens']:>6} {r['gflops_per_sample']:>13.1f} {r['step_ms']:>9.1f} "
              f"{r['samples_per_s']:>10.1f} {r['warmup_s']:>10.1f}")
    print(f"padded to the longest / to max_text_len: {summary['speedup']:.3f}x the samples/s, "
          f"{summary['flops_ratio']:.3f}x the FLOPs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
