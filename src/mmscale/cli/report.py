"""``mmscale report RUN_DIR``: re-render report.html from a run's results.json (or, for a benchmark's
run folder, a page of its result rows)."""

from __future__ import annotations

from pathlib import Path

from mmscale.cli.out import folder_file
from mmscale.extras import require_extra
from mmscale.report.answer import answer
from mmscale.report.compare_rows import compare_row_runs, write_rows_html
from mmscale.report.html import REPORT_NAME, write_report
from mmscale.report.results import RESULTS_NAME, read_results
from mmscale.result_rows import ROWS_FILE, read_rows

ORDER = 70


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="re-render report.html from RUN_DIR/results.json",
        description="Check RUN_DIR/results.json against its schema and render the self-contained "
                    "report.html again (plots redrawn from the stored figures; nothing is re-measured), with "
                    "the files it links beside it: a CSV of every table (csv/) and pipeline.trace.json. "
                    "A benchmark's run folder (rows.jsonl, no results.json) gets a page of its rows.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by mmscale validate or a bench command")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder that report.html (and the files it links) is written into (default: RUN_DIR)")
    parser.set_defaults(run=run)


def run(args) -> int:
    run_dir = Path(args.run_dir)
    target = folder_file(args.out or (run_dir if run_dir.is_dir() else run_dir.parent), REPORT_NAME)
    if run_dir.is_dir() and not (run_dir / RESULTS_NAME).is_file() and (run_dir / ROWS_FILE).is_file():
        rows = read_rows(run_dir)
        path = write_rows_html(compare_row_runs([rows]), [args.run_dir], target,
                               rows[0]["environment"] if rows else None)
        print(f"report: {path}")
        return 0
    require_extra("report", "mmscale report")  # the plots are drawn with matplotlib
    doc = read_results(args.run_dir)
    path = write_report(doc, target.parent, target.name)
    for line in answer(doc)["lines"]:  # recomputed from the figures with this build's rules
        print(line)
    print(f"report: {path}")
    return 0
