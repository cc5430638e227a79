"""``mmscale compare RUN_A RUN_B [RUN ...]``: what changed between runs.

Two validate runs (each with results.json): their headline metrics, a change beyond both runs'
measured noise being a regression. Any other run folders with result rows (``rows.jsonl``, which
every benchmark's ``--out`` holds), or more than two runs, or ``--rows``: each metric by variant with
every run's ratio to the first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmscale.cli.out import folder_file
from mmscale.errors import ConfigError
from mmscale.report.compare import compare_runs, format_text, write_compare_html
from mmscale.report.compare_rows import compare_row_runs, format_rows_text, write_rows_html
from mmscale.report.results import RESULTS_NAME, read_results
from mmscale.result_rows import ROWS_FILE, read_rows
from mmscale.strict_json import dumps

ORDER = 75
COMPARE_FILE = "compare.html"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="differences between two runs; regressions only beyond measured noise",
        description="Compare the headline metrics of two validate runs (A = baseline, B = candidate). A "
                    "change is a regression only when it exceeds the spread of both runs' repeated "
                    "measurements (and --min-change); smaller differences are 'within noise'. Run folders "
                    "of benchmarks (their rows.jsonl), or more than two runs, are compared metric by metric "
                    "with each run's ratio to the first.",
        epilog="exit status: 0 no regression, 3 at least one regression (for CI gates)\n"
               "examples:\n  mmscale compare runs/validate_a runs/validate_b\n"
               "  mmscale compare runs/train_step_h100 runs/train_step_h200 runs/train_step_new   (rows.jsonl)\n"
               "  mmscale compare runs/validate_a runs/validate_b --out runs/a_vs_b   (writes runs/a_vs_b/compare.html)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", metavar="RUN_A", help="baseline run directory")
    parser.add_argument("run_b", metavar="RUN_B", help="candidate run directory")
    parser.add_argument("more", nargs="*", metavar="RUN", help="further run directories (compared by their rows)")
    parser.add_argument("--rows", action="store_true",
                        help="compare the runs' rows.jsonl even where both have results.json")
    parser.add_argument("--min-change", type=float, default=0.03,
                        help="smallest relative change that can count, even with no noise (default 0.03)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help=f"also write the comparison as HTML: DIR/{COMPARE_FILE} (the folder is created)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--html", help=argparse.SUPPRESS)  # the retired form: run() says what replaced it
    parser.set_defaults(run=run)


def by_rows(args) -> bool:
    """Rows with ``--rows`` or more than two runs, or where two runs both hold rows.jsonl and not
    both results.json; otherwise results.json (whose absence is then the error named)."""
    pair = (Path(args.run_a), Path(args.run_b))
    both_validate = all((p / RESULTS_NAME).is_file() or p.name == RESULTS_NAME for p in pair)
    both_rows = all((p / ROWS_FILE).is_file() or p.name == ROWS_FILE for p in pair)
    return args.rows or bool(args.more) or (both_rows and not both_validate)


def run(args) -> int:
    if args.html is not None:
        folder = Path(args.html).parent if args.html.endswith(".html") else Path(args.html)
        raise ConfigError("--html", f"is replaced by --out DIR (writes DIR/{COMPARE_FILE}): pass --out {folder}")
    target = folder_file(args.out, COMPARE_FILE) if args.out is not None else None
    if by_rows(args):
        return run_rows(args, target)
    result = compare_runs(read_results(args.run_a), read_results(args.run_b), min_rel=args.min_change)
    if args.json:
        print(dumps(result, indent=1))
    else:
        print(format_text(result, args.run_a, args.run_b))
    if target:
        path = write_compare_html(result, args.run_a, args.run_b, target)
        if not args.json:
            print(f"html: {path}")
    return 3 if result["regressions"] else 0


def run_rows(args, target: Path | None) -> int:
    labels = [args.run_a, args.run_b, *args.more]
    result = compare_row_runs([read_rows(label) for label in labels])
    if args.json:
        print(dumps({"runs": labels, **result}, indent=1))
    else:
        print(format_rows_text(result, labels))
    if target:
        path = write_rows_html(result, labels, target)
        if not args.json:
            print(f"html: {path}")
    return 0
