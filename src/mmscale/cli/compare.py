"""``mmscale compare RUN_A RUN_B``: what changed between two runs, beyond their measured noise."""

from __future__ import annotations

import argparse

from mmscale.strict_json import dumps

ORDER = 75


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="differences between two runs; regressions only beyond measured noise",
        description="Compare the headline metrics of two validate runs (A = baseline, B = candidate). A "
                    "change is a regression only when it exceeds the spread of both runs' repeated "
                    "measurements (and --min-change); smaller differences are 'within noise'.",
        epilog="exit status: 0 no regression, 3 at least one regression (for CI gates)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", metavar="RUN_A", help="baseline run directory")
    parser.add_argument("run_b", metavar="RUN_B", help="candidate run directory")
    parser.add_argument("--min-change", type=float, default=0.03,
                        help="smallest relative change that can count, even with no noise (default 0.03)")
    parser.add_argument("--html", default=None, help="also write the comparison as HTML here")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    from mmscale.report.compare import compare_runs, format_text, write_compare_html
    from mmscale.report.results import read_results

    result = compare_runs(read_results(args.run_a), read_results(args.run_b), min_rel=args.min_change)
    if args.json:
        print(dumps(result, indent=1))
    else:
        print(format_text(result, args.run_a, args.run_b))
    if args.html:
        path = write_compare_html(result, args.run_a, args.run_b, args.html)
        if not args.json:
            print(f"html: {path}")
    return 3 if result["regressions"] else 0
