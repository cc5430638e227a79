"""``mmscale bench ...``: each benchmark registers itself from its own ``cli/bench_*.py``."""

from __future__ import annotations

ORDER = 40


def register(subparsers) -> None:
    from mmscale.cli import command_modules

    parser = subparsers.add_parser(
        "bench",
        help="run one benchmark (data, pipeline, datascale, batchsweep, scaling, load)",
        description=(
            "Run one benchmark. Each measures ours and the baseline in the same run and prints "
            "the ratio, so that the machine's noise cancels."
        ),
    )
    bench = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    for module in command_modules(prefix="bench_"):
        module.register(bench)
    parser.set_defaults(run=lambda args: parser.print_help() or 1)
