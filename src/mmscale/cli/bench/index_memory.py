"""``mmscale bench index-memory``: memory of a DataLoader over a huge manifest, columnar index vs a list of dicts."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from mmscale.bench.index_memory import RESULTS_FILE, bench_index_memory
from mmscale.bench.rows import index_memory_rows
from mmscale.cli.bench.args import at_least
from mmscale.cli.out import add_out_arguments, run_config, save_rows
from mmscale.strict_json import dumps

ORDER = 16

EPILOG = f"""examples:
  mmscale bench index-memory --rows 10000000 --workers 8 --out runs/index_memory     (about 2 GiB of RAM free)
  mmscale bench index-memory --rows 20000 --naive-rows 20000 --workers 2 --batch-size 1024   (seconds)

The measure is total PSS (proportional set size) summed over the main process and its workers,
read from /proc/PID/smaps_rollup: each shared page is split between the processes that map it, so
the sum counts every physical page once (a sum of RSS would count the shared index once per
worker). Growth is PSS at the end minus PSS once all workers had started. The list of dicts runs
at --naive-rows (at 10M rows it needs ~4 GB per process); its peak is scaled to --rows and marked
as extrapolated. Linux only. Writes OUT/{RESULTS_FILE}."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "index-memory", help="memory of workers iterating a huge manifest: columnar index vs list of dicts",
        description="Build the index of a synthetic manifest in each layout, iterate it with forked DataLoader "
                    "workers (no image decode: what is measured is the index) and record the total PSS of the "
                    "main process and its workers over the run.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=at_least(0), default=10_000_000,
                        help="rows of the columnar index (default 10,000,000; 0 skips it)")
    parser.add_argument("--naive-rows", type=at_least(0), default=1_000_000,
                        help="rows of the list-of-dicts index (default 1,000,000; 0 skips it)")
    parser.add_argument("--workers", type=at_least(0), default=8, help="DataLoader workers (default 8)")
    parser.add_argument("--stride", type=at_least(1), default=1, help="visit every stride-th row (default 1: all)")
    parser.add_argument("--batch-size", type=at_least(1), default=4096, help="indices per batch (default 4096)")
    parser.add_argument("--interval-s", type=float, default=0.5, help="memory sampling period (default 0.5)")
    parser.add_argument("--limit-gib", type=float, default=2.0, help="target for the columnar peak PSS (default 2)")
    add_out_arguments(parser, "run folder (default runs/index_memory)", default="runs/index_memory")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    result = bench_index_memory(args.rows, args.naive_rows, args.workers, args.stride, args.batch_size,
                                args.interval_s, args.limit_gib, args.out,
                                say=(lambda line: None) if args.json else (lambda line: print(line, flush=True)))
    save_rows(args, args.out, index_memory_rows(result, run_config(args)))
    if args.json:
        print(dumps(result, indent=1))
        return 0
    print_table(result["rows"], result["limit_mib"])
    return 0


def print_table(rows: list[dict], limit_mib: float) -> None:
    table = Table(title=f"index memory: total PSS of main + workers (limit {limit_mib:.0f} MiB)")
    for col in ("layout", "rows", "workers", "visited", "build s", "iterate s", "index MiB",
                "PSS start", "PSS peak", "PSS end", "growth", "sum RSS end"):
        table.add_column(col, justify="left" if col == "layout" else "right")
    for r in rows:
        table.add_row(r["layout"], f"{r['rows']:,}", str(r["workers"]), f"{r['visited']:,}", f"{r['build_s']:.1f}",
                      f"{r['iterate_s']:.1f}", f"{r['index_mib']:.0f}", f"{r['pss_start_mib']:.0f}",
                      f"{r['pss_peak_mib']:.0f}", f"{r['pss_end_mib']:.0f}", f"{r['pss_growth_mib']:+.0f}",
                      f"{r['rss_sum_end_mib']:.0f}")
    console = Console(width=200)
    console.print(table)
    for r in rows:
        for at, mib in r["extrapolated_pss_peak_mib_at"].items():
            console.print(f"{r['layout']}: peak PSS scaled to {int(at):,} rows ~ {mib:,.0f} MiB (extrapolated)")
