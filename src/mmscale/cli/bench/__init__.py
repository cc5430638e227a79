"""``mmscale bench ...``: each benchmark registers itself from its own module in this package
(``cli/bench/data.py`` is ``mmscale bench data``); ``args`` holds the flag parsers they share."""

from __future__ import annotations

from mmscale.cli import command_modules

ORDER = 40


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run one benchmark (data, decode-auto, gpu-decode, pipeline, scaling, load, serve, ...)",
        description=(
            "Run one benchmark. Each measures ours and the baseline in the same run and prints "
            "the ratio, so that the machine's noise cancels."
        ),
    )
    bench = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    for module in command_modules(__name__):
        module.register(bench)
    parser.set_defaults(run=lambda args: parser.print_help() or 1)
