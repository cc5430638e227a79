"""``mmscale data synth|check``: make a synthetic dataset; find every sample training would skip."""

from __future__ import annotations

import argparse
import contextlib
import sys

from rich.console import Console
from rich.table import Table

from mmscale.data.check import check_dataset, prepare_output
from mmscale.data.synth import synthesize
from mmscale.errors import ConfigError, MmscaleError
from mmscale.strict_json import dumps

ORDER = 10
# library parameter or config field -> the flag a user typed, so an error names what to change
FLAGS = {"n": "--n", "out": "--out", "format": "--format", "seed": "--seed", "val_frac": "--val-frac",
         "workers": "--workers", "num_workers": "--workers", "data.max_image_pixels": "--max-image-pixels",
         "data.image_root": "--image-root", "data.format": "--format"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="synthesize a dataset, or check one for samples that would be skipped",
        description="Image-caption datasets: JSONL ({\"image\", \"caption\"|\"text\"}), CSV (header "
                    "image,caption), COCO captions JSON (+ --image-root), or WebDataset tar shards "
                    "(KEY.jpg|png|webp + KEY.txt). A directory means its train/val manifest or shards.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    synth = sub.add_parser(
        "synth", help="write a deterministic photo-like dataset with descriptive captions",
        description="Render N photo-like 640x480 JPEG scenes (textured background, shaded objects) whose "
                    "captions name each object's count, size, colour, shape and position. Same seed, same "
                    "bytes. Uses every core.",
        epilog="examples:\n  mmscale data synth --n 5000 --out data/synth\n"
               "  mmscale data synth --n 100000 --out data/synth-wds --format wds --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("--n", type=int, required=True, help="number of samples (train + val)")
    synth.add_argument("--out", required=True, metavar="DIR",
                       help="output directory (created); one that already holds a dataset is refused "
                            "unless --overwrite")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace the dataset already in --out: first delete its train/val manifests, "
                            "images/NNNN/*.jpg and train/val-*.tar shards (nothing else in DIR)")
    synth.add_argument("--format", choices=("files", "wds"), default="files",
                       help="files: train.jsonl/val.jsonl + images/; wds: train-*.tar/val-*.tar shards")
    synth.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    synth.add_argument("--val-frac", type=float, default=0.1, help="fraction held out as val (default 0.1)")
    synth.add_argument("--workers", type=int, default=None,
                       help="rendering processes, >= 1 (default: one per core; 1: render in this process; "
                            "never more than there are 16-sample chunks)")
    synth.add_argument("--json", action="store_true", help="print the result as one JSON object")
    synth.set_defaults(run=run_synth)

    check = sub.add_parser(
        "check", help="decode every sample and count what would be skipped, by reason",
        description="Read the manifest and decode every image exactly as training does. Prints counts by "
                    "reason (used + skipped = read). Without --strict the exit status is 0 whatever is "
                    "found; with --strict the first bad sample is an error naming file, line and reason.",
        epilog="examples:\n  mmscale data check data/synth/train.jsonl\n"
               "  mmscale data check captions.csv --json --bad-list bad.jsonl\n"
               "  mmscale data check annotations/captions_val2017.json --image-root val2017 --strict",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("manifest", help="manifest file, shard (pattern) or dataset directory")
    check.add_argument("--format", choices=("auto", "jsonl", "csv", "coco", "wds"), default="auto",
                       help="manifest format (default auto: from the file name)")
    check.add_argument("--image-root", default=None, help="directory image paths are relative to "
                                                          "(default: the manifest's directory)")
    check.add_argument("--split", default="train", help="which split of a directory (default train)")
    check.add_argument("--strict", action="store_true", help="stop with an error at the first bad sample")
    check.add_argument("--bad-list", default=None, metavar="FILE",
                       help="write every bad sample as JSON lines (its directory is created)")
    check.add_argument("--json", action="store_true",
                       help='print only {"read", "used", "skipped", "by_reason"} as JSON')
    check.add_argument("--max-image-pixels", type=int, default=64_000_000,
                       help="images with more pixels are skipped as too_many_pixels (default 64M, as training's "
                            "data.max_image_pixels)")
    check.add_argument("--workers", type=int, default=2, help="decode processes (default 2)")
    check.set_defaults(run=run_check)
    parser.set_defaults(run=lambda args: parser.print_help() or 1)


@contextlib.contextmanager
def flag_names():
    """Re-raise a library ``ConfigError`` under the flag the user typed (``num_workers`` -> ``--workers``)."""
    try:
        yield
    except ConfigError as exc:
        if exc.field == "data.path":  # the positional argument, named as argparse would
            raise MmscaleError(f"argument manifest: {exc.reason}") from None
        if exc.field not in FLAGS:
            raise
        raise ConfigError(FLAGS[exc.field], exc.reason) from None


def run_synth(args) -> int:
    with flag_names():
        result = synthesize(args.n, args.out, fmt=args.format, seed=args.seed, val_frac=args.val_frac,
                            workers=args.workers, progress=not args.json and sys.stderr.isatty(),
                            overwrite=args.overwrite)
    if args.json:
        print(dumps(result.as_dict()))
        return 0
    print(f"wrote {result.n_train} train + {result.n_val} val samples ({args.format}) to {result.out_dir}")
    processes = "1 process" if result.workers == 1 else f"{result.workers} processes"
    print(f"{result.img_per_s:.1f} img/s on {processes}, {result.seconds:.1f} s, "
          f"mean JPEG {result.mean_kb:.1f} kB")
    return 0


def run_check(args) -> int:
    if args.bad_list:  # before the (long) check, so a bad path is refused at once
        prepare_output(args.bad_list, "--bad-list")
    with flag_names():
        report = check_dataset(args.manifest, args.format, args.image_root, args.split,
                               max_image_pixels=args.max_image_pixels, strict=args.strict,
                               num_workers=args.workers, progress=not args.json and sys.stderr.isatty())
    if args.bad_list:
        report.write_bad_list(args.bad_list, flag="--bad-list")
    if args.json:
        print(dumps(report.as_dict()))
        return 0

    counts = report.as_dict()
    table = Table(title=f"{report.path} ({report.fmt})")
    table.add_column("samples")
    table.add_column("count", justify="right")
    for key in ("read", "used", "skipped"):
        table.add_row(key, str(counts[key]))
    for reason, n in counts["by_reason"].items():
        table.add_row(f"  {reason}", str(n))
    console = Console()
    for bad in report.bad[:10]:
        detail = f": {bad.detail}" if bad.detail else ""
        console.print(f"[yellow]skip[/] {bad.reason}: {bad.where()}{detail}", markup=True, highlight=False)
    if len(report.bad) > 10:
        console.print(f"... and {len(report.bad) - 10} more" + ("" if args.bad_list else " (--bad-list FILE lists all)"))
    if args.bad_list:
        console.print(f"bad samples written to {args.bad_list}")
    console.print(table)
    return 0
