"""``mmscale bench scaling``: the same training step on 1..N GPUs through torchrun, DDP and FSDP2."""

from __future__ import annotations

import argparse

from mmscale.cli.bench.args import at_least, name_list
from mmscale.cli.bench.batchsweep import add_common, finish_section
from mmscale.validate import run_one_section

ORDER = 50
STRATEGIES = ("ddp", "fsdp")  # what mmscale.bench.scaling launches (ValidateConfig.validate checks the same)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scaling", help="weak and strong scaling efficiency on 1..N GPUs (DDP, FSDP2)",
        description="Launch torchrun on 1, 2, 4, ... GPUs per strategy; time weak scaling (per-rank batch "
                    "fixed) and strong scaling (global batch fixed); efficiency = throughput on N / (N x "
                    "throughput on 1); exposed communication from the same steps without gradient sync; the "
                    "link's bus bandwidth measured in the same process group and the time it needs for the "
                    "bytes each strategy moves (comm_ms_at_link); the host time until the step call returns "
                    "(issue_ms: near step_ms = host-bound). "
                    "Without 2+ GPUs, --cpu-smoke runs 1 and 2 gloo CPU processes.",
        epilog="examples:\n  mmscale bench scaling --preset gpu\n  mmscale bench scaling --preset cpu --cpu-smoke",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--strategies", type=name_list(STRATEGIES, "strategy", "strategies"), default=None,
                        help=f"comma-separated: {','.join(STRATEGIES)}")
    parser.add_argument("--max-gpus", type=at_least(0), default=None,
                        help="largest world size (default or 0: all GPUs)")
    parser.add_argument("--cpu-smoke", action="store_true", help="1 and 2 CPU processes when there are no GPUs")
    add_common(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    overrides = list(args.overrides)
    if args.strategies:
        names = ",".join(f'"{s}"' for s in args.strategies)
        overrides.append(f"validate.scaling.strategies=[{names}]")
    if args.max_gpus:
        overrides.append(f"validate.scaling.max_world={args.max_gpus}")
    if args.cpu_smoke:
        overrides.append("validate.scaling.cpu_smoke=true")
    section = run_one_section("scaling", args.preset, overrides, args.config, None, args.out,
                              show_progress=not args.json)
    return finish_section("scaling", section, args, ["strategy", "world_size", "regime", "per_rank_batch", "step_ms",
                                         "samples_per_s", "per_rank_samples_per_s", "comm_share",
                                         "comm_ms_at_link", "issue_ms", "efficiency", "peak_mem_gib"])
