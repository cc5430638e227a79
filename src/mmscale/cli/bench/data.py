"""``mmscale bench data``: reference data pipeline vs ours, on the same files in one run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mmscale.bench.data_loading import bench_data_loading, min_images, speedup
from mmscale.bench.rows import data_rows
from mmscale.bench.thresholds import DATA_LOADER_SPEEDUP
from mmscale.cli.bench.args import at_least
from mmscale.cli.out import add_out_arguments, run_config, save_rows
from mmscale.data.skips import SkipCounter
from mmscale.data.synth import synthesize
from mmscale.errors import ConfigError
from mmscale.monitor.brief import finish_sampler, monitor_line, start_sampler
from mmscale.strict_json import dumps, write_json

ORDER = 10
TARGET_SPEEDUP = DATA_LOADER_SPEEDUP  # ours_cpu over reference_dataloader at equal workers; validate's verdict reads it too


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="images/s of the reference pipeline vs ours (and the decode ceiling)",
        description="On the same JPEGs in one run: (a) the reference loop in one process, (b) the same "
                    "transform in a DataLoader with workers/pinning/persistent workers, (c) our loader at "
                    "the same worker count, (d) decode-only throughput (the ceiling). Prints images/s "
                    f"and each variant's ratio to (b); the target is (c) >= {TARGET_SPEEDUP}x (b).",
        epilog="examples:\n  mmscale bench data                         (synthesizes 512 images)\n"
               "  mmscale bench data --data data/synth --n 2000 --workers 8 --out runs/data",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="dataset dir or manifest (default: synthesize --n images into --out)")
    parser.add_argument("--n", type=at_least(1), default=512,
                        help="images per variant (default 512; at least --batch-size). DataLoader variants "
                             "read them twice and time the second pass")
    parser.add_argument("--workers", type=at_least(0), default=None,
                        help="DataLoader workers for (b), (c), (d) (default: min(8, cores))")
    parser.add_argument("--batch-size", type=at_least(1), default=32, help="batch size (default 32)")
    parser.add_argument("--repeats", type=at_least(1), default=1,
                        help="runs per variant, in alternating order; rows are medians (default 1)")
    add_out_arguments(parser, "results (and synthesized data)", default="runs/bench_data", metavar="DIR")
    parser.add_argument("--monitor-interval", type=float, default=0.2, metavar="SECONDS",
                        help="hardware monitor beside the run, one sample per SECONDS (default 0.2; 0: off): "
                             "its timeline goes to OUT/data_loading.monitor.jsonl and its summary into the JSON, "
                             "so a slow variant can be read against host CPU and disk reads")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(run=run)


def check_args(args) -> None:
    """Refuse an --n too small for --batch-size before anything runs (each alone is checked by
    its argparse type)."""
    need = min_images(args.batch_size)
    if args.n < need:
        raise ConfigError("--n", f"{args.n} images are too few for --batch-size {args.batch_size}: each timed pass "
                                 f"needs at least one whole batch ({need} images); raise --n to {need} or lower "
                                 f"--batch-size to {args.n}")


def run(args) -> int:
    check_args(args)
    if args.monitor_interval < 0:
        raise ConfigError("--monitor-interval", f"must be >= 0 seconds (0: no monitor), got {args.monitor_interval}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        data = str(out / "synth")
        if not (Path(data) / "train.jsonl").is_file() or sum(1 for _ in open(Path(data) / "train.jsonl")) < args.n:
            synthesize(int(args.n / 0.9) + 1, data, progress=not args.json and sys.stderr.isatty())
    workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
    say = None if args.json else (lambda text: print(f"running {text} ...", file=sys.stderr))
    skips = SkipCounter()

    monitor = start_sampler(args.monitor_interval)
    try:
        rows = bench_data_loading(data, n_images=args.n, workers=workers, batch_size=args.batch_size,
                                  repeats=args.repeats, progress=say, skips=skips)
    finally:
        if monitor is not None:
            monitor.stop()  # a failed run's sampler process must not outlive it
    monitor_brief = finish_sampler(monitor, out / MONITOR_FILE)
    if skips.skipped and not args.json:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(skips.by_reason.items()))
        print(f"skipped {skips.skipped} of the first {skips.read} samples ({reasons}); every variant runs on "
              f"the other {skips.used}", file=sys.stderr)
    result = {"data": data, "workers": workers, "repeats": args.repeats, "skips": skips.as_dict(),
              "rows": [r.as_dict() for r in rows],
              "speedup_ours_vs_reference_dataloader": speedup(rows), "target_speedup": TARGET_SPEEDUP,
              "monitor": monitor_brief}
    write_json(out / "data_loading.json", result, indent=1)
    save_rows(args, out, data_rows(result, run_config(args)))
    if args.json:
        print(dumps(result))
        return 0
    print_table(rows, speedup(rows))
    if monitor_brief:
        print(monitor_line(monitor_brief))
    return 0


MONITOR_FILE = "data_loading.monitor.jsonl"


def print_table(rows, ratio: float) -> None:
    table = Table(title="data loading (images/s, higher is better)")
    for col in ("variant", "workers", "batch", "images", "img/s", "x ref. DataLoader", "note"):
        table.add_column(col, justify="left" if col in ("variant", "note") else "right")
    for r in rows:
        table.add_row(r.variant, str(r.workers), str(r.batch_size), str(r.n_images), f"{r.img_per_s:.1f}",
                      f"{r.vs_reference_dataloader:.2f}", r.note)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    if ratio:
        verdict = "meets" if ratio >= TARGET_SPEEDUP else "misses"
        console.print(f"ours_cpu / reference_dataloader = {ratio:.2f}x ({verdict} the {TARGET_SPEEDUP}x target)")
