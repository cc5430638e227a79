"""``mmscale bench datascale``: the same epochs on growing subsets; time and memory against N."""

from __future__ import annotations

import argparse

from mmscale.cli.bench.args import at_least, number_list
from mmscale.cli.bench.batchsweep import add_common, finish_section
from mmscale.validate import run_one_section

ORDER = 30


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "datascale", help="training time and peak memory against dataset size N, with a linear fit",
        description="Train the same number of epochs on the first N samples for each N (streamed with "
                    "data.limit, not preloaded); record wall time, samples/s, peak host RSS and GPU "
                    "memory; fit time = a*N + b with R^2 and flag super-linear time or memory that "
                    "grows with N.",
        epilog="examples:\n  mmscale bench datascale --preset gpu --data data/coco --sizes 10000,50000,100000\n"
               "  mmscale bench datascale --preset cpu --sizes 500,1000,2000 --out runs/ds",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=number_list(int, 1), default=None,
                        help="comma-separated N values, each >= 1 (default: the preset's)")
    parser.add_argument("--epochs", type=at_least(1), default=None, help="epochs per size (default: the preset's)")
    parser.add_argument("--repeats", type=at_least(1), default=None, help="runs per size, for a noise estimate")
    parser.add_argument("--data", default=None, metavar="DIR", help="dataset (default: synthesize one in --out)")
    add_common(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    overrides = list(args.overrides)
    if args.sizes:
        overrides.append(f"validate.datascale.sizes=[{','.join(map(str, args.sizes))}]")
        overrides.append(f"validate.synth_samples={int(max(args.sizes) / 0.9) + 1}")
    if args.epochs:
        overrides.append(f"validate.datascale.epochs={args.epochs}")
    if args.repeats:
        overrides.append(f"validate.datascale.repeats={args.repeats}")
    section = run_one_section("datascale", args.preset, overrides, args.config, args.data, args.out,
                              show_progress=not args.json)
    return finish_section("datascale", section, args, ["n_samples", "repeat", "steps", "train_wall_s", "samples_per_s",
                                         "peak_rss_gib", "peak_gpu_gib"])
