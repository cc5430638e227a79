"""``mmscale bench train-step``: ours against the reference design and the BLIP peer, one process."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmscale.bench.rows import train_step_rows
from mmscale.bench.train_step import ROWS, BenchSpec, bench_train_step
from mmscale.cli.bench.args import at_least, name_list
from mmscale.cli.out import add_out_arguments, check_csv, run_config, save_rows
from mmscale.strict_json import dumps, write_json

ORDER = 35


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-step", help="training-step samples/s: ours vs the reference design vs HF BLIP, same run",
        description="Time one optimizer step (forward, backward, clipping, AdamW) on a synthetic device batch: "
                    "the reference design in fp32 and compiled bf16, ours as `mmscale train` runs it on this "
                    "device, and Hugging Face BLIP's ITM model. Prints samples/s, MFU and ours over each row.",
        epilog="examples:\n  mmscale bench train-step --out runs/train_step\n"
               "  mmscale bench train-step --rows ours train.step_graph=false   (an A/B row of ours)\n"
               "  mmscale bench train-step --preset tiny --batch 4 --steps 2 --warmup 1   (CPU smoke)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides over the preset")
    parser.add_argument("--preset", default="base", choices=("tiny", "base"), help="model preset (default base)")
    parser.add_argument("--batch", type=at_least(1), default=128, help="samples per step, every row")
    parser.add_argument("--steps", type=at_least(1), default=30, help="timed steps per row")
    parser.add_argument("--warmup", type=at_least(1), default=8, help="untimed steps per row (compile, capture)")
    parser.add_argument("--rows", type=name_list(ROWS, "row"), default=list(ROWS), help=f"comma-separated: {','.join(ROWS)}")
    parser.add_argument("--kernels", type=at_least(0), default=0, metavar="N",
                        help="profile N more steps per row: device ms by kernel kind and the host gap")
    add_out_arguments(parser, "run folder: train_step.json is written there", default=None)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    check_csv(args)
    spec = BenchSpec(preset=args.preset, batch=args.batch, steps=args.steps, warmup=args.warmup,
                     rows=tuple(args.rows), overrides=tuple(args.overrides), kernels=args.kernels)

    def show(row):
        if not args.json:
            print(f"{row.variant}: {row.samples_per_s:,.1f} samples/s ({row.status}; {row.runtime})", flush=True)

    result = bench_train_step(spec, on_row=show)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / "train_step.json", result, indent=2)
        save_rows(args, args.out, train_step_rows(result, run_config(args)))
    if args.json:
        print(dumps(result))
        return 0
    print(f"{result['device']}, torch {result['torch']}, preset {args.preset}, batch {args.batch}")
    print(f"{'row':<24} {'samples/s':>10} {'pipelined':>10} {'step ms':>8} {'MFU':>6} {'peak GiB':>9}")
    for row in result["rows"]:
        mfu = f"{100 * row['mfu']:.1f}%" if row["mfu"] is not None else "-"
        print(f"{row['variant']:<24} {row['samples_per_s']:>10,.1f} {row['samples_per_s_pipelined']:>10,.1f} "
              f"{row['step_ms']:>8.1f} {mfu:>6} {row['peak_gpu_gib']:>9.1f}")
    for key, value in result["ratios"].items():
        print(f"{key}: {value:.2f}x")
    return 0
