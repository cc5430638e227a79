"""``mmscale report RUN_DIR``: re-render report.html from a run's results.json."""

from __future__ import annotations

from mmscale.extras import require_extra

ORDER = 70


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="re-render report.html from RUN_DIR/results.json",
        description="Check RUN_DIR/results.json against its schema and render the self-contained "
                    "report.html again (plots redrawn from the stored figures; nothing is re-measured), with "
                    "the files it links beside it: a CSV of every table (csv/) and pipeline.trace.json.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by mmscale validate or a bench command")
    parser.add_argument("--out", default=None, help="write the HTML here (default: RUN_DIR/report.html)")
    parser.set_defaults(run=run)


def run(args) -> int:
    require_extra("report", "mmscale report")  # the plots are drawn with matplotlib
    from pathlib import Path

    from mmscale.report.answer import answer
    from mmscale.report.html import write_report
    from mmscale.report.results import read_results

    doc = read_results(args.run_dir)
    target = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    path = write_report(doc, target.parent, target.name)
    for line in answer(doc)["lines"]:  # recomputed from the figures with this build's rules
        print(line)
    print(f"report: {path}")
    return 0
