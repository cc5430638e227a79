"""``mmscale bench checkpoint``: save and load time of the single-file checkpoint against DCP's sharded folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmscale.bench.checkpoint_io import bench_checkpoint
from mmscale.bench.rows import checkpoint_rows
from mmscale.cli.bench.args import at_least
from mmscale.cli.out import add_out_arguments, check_csv, run_config, save_rows
from mmscale.strict_json import dumps, write_json

ORDER = 36


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "checkpoint", help="checkpoint save/load seconds: checkpoint.pt vs the sharded DCP folder",
        description="Build the preset's model and optimizer as `mmscale train` does, take one step, then save and "
                    "load the same state as one checkpoint.pt and as a DCP step folder (what torchrun jobs write). "
                    "Prints the median seconds of each and DCP over the single file.",
        epilog="examples:\n  mmscale bench checkpoint --out runs/checkpoint\n"
               "  mmscale bench checkpoint --preset tiny --repeats 1   (CPU smoke)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides over the preset")
    parser.add_argument("--preset", default="base", choices=("tiny", "base"), help="model preset (default base)")
    parser.add_argument("--repeats", type=at_least(1), default=3, help="saves and loads per format (median)")
    parser.add_argument("--dir", default=None, help="where the checkpoints are written (default: the temp dir)")
    add_out_arguments(parser, "run folder: checkpoint.json is written there", default=None)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    check_csv(args)
    result = bench_checkpoint(args.preset, tuple(args.overrides), args.repeats, args.dir)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / "checkpoint.json", result, indent=2)
        save_rows(args, args.out, checkpoint_rows(result, run_config(args)))
    if args.json:
        print(dumps(result))
        return 0
    print(f"{result['device']}, torch {result['torch']}, preset {args.preset}, median of {args.repeats}")
    print(f"{'format':<12} {'save s':>8} {'load s':>8} {'MiB':>8}")
    for row in result["rows"]:
        print(f"{row['format']:<12} {row['save_s']:>8.2f} {row['load_s']:>8.2f} {row['bytes'] / 2**20:>8.0f}")
    for key, value in result["ratios"].items():
        print(f"{key}: {value:.2f}x")
    return 0
