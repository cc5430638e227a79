"""``mmscale bench gpu-decode``: the GPU decode path against the CPU DataLoader and the reference design."""

from __future__ import annotations

import argparse

from mmscale.bench.decode.pipelines import RESULTS_FILE, ROWS, TARGET, GpuDecodeConfig, bench_gpu_decode
from mmscale.bench.rows import gpu_decode_rows
from mmscale.cli.bench.args import at_least, name_list
from mmscale.cli.out import add_out_arguments, run_config, save_rows
from mmscale.strict_json import dumps

ORDER = 14

EPILOG = f"""examples:
  mmscale bench gpu-decode --out runs/gpu_decode                                    (GPU, every row)
  mmscale bench gpu-decode --data runs/gdimg --passes 8 --out runs/gd \\
      --rows reference_dataloader,ours_cpu_decode,ours_gpu_decode,gpu_decode_resize
  mmscale bench gpu-decode --device cpu --n 64 --batch-size 16 --workers 2 --passes 1 --out runs/x
                                                       (CPU smoke: a batch must fit the set)

Rows: reference_dataloader (the reference design's dataset in a DataLoader, always run: the ratios'
base); ours_cpu_decode (data.decode=cpu); ours_gpu_decode (data.decode=gpu: workers read bytes,
nvjpeg batch decode + resize + normalize on the GPU in two background threads) and its variants
(_1thread, _inline, _switch0.5ms, _fs_sharing); ours_raw_only (the workers' ceiling: raw batches,
nothing decoded); *_per_epoch (the loader re-iterated once per pass); gpu_decode_only and
gpu_decode_resize (ceilings: bytes already in memory; _tN from N threads at once). The files are
written first and read from the page cache: this measures the pipeline, not the disk.
Target: {TARGET}. Writes OUT/{RESULTS_FILE}."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gpu-decode", help="images/s of the GPU decode path vs the CPU loader and the reference DataLoader",
        description="On the same JPEG files in one run: images/s of complete input pipelines (decode, resize, "
                    "normalize, tokenize, a float batch on the device), ours with CPU and GPU decode against the "
                    "reference design's DataLoader, and the nvjpeg ceilings.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = GpuDecodeConfig()
    add_out_arguments(parser, f"run folder (default {default.out})", default=default.out)
    parser.add_argument("--data", default=None, help="image dir (default: OUT/images, written if missing)")
    parser.add_argument("--n", type=at_least(1), default=default.n, help=f"images in the set (default {default.n})")
    parser.add_argument("--passes", type=at_least(1), default=default.passes,
                        help="passes over the set per pipeline (default 8: a GPU row times ~3 s; 2 gave windows "
                             "under 1 s that spread 30%%)")
    parser.add_argument("--batch-size", type=at_least(1), default=default.batch_size,
                        help=f"images per batch (default {default.batch_size})")
    parser.add_argument("--workers", type=at_least(0), default=default.workers,
                        help=f"DataLoader workers (default min(16, cores) = {default.workers})")
    parser.add_argument("--image-size", type=at_least(1), default=default.image_size,
                        help=f"side of the batch's images (default {default.image_size})")
    parser.add_argument("--width", type=at_least(1), default=default.width,
                        help=f"width of the JPEGs written (default {default.width})")
    parser.add_argument("--height", type=at_least(1), default=default.height,
                        help=f"height of the JPEGs written (default {default.height})")
    parser.add_argument("--device", default=default.device,
                        help=f"torch device of the batches (default: cuda when present, here {default.device})")
    parser.add_argument("--cpu-stand-in", action="store_true",
                        help="without CUDA, run the GPU rows' code on the CPU (the batch decoder's CPU build in "
                             "nvjpeg's place): their plumbing, not their speed")
    parser.add_argument("--rows", type=name_list(ROWS, "row"), default=[],
                        help="comma list of rows to run (default: all; the reference always runs, as the ratios' base)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    cfg = GpuDecodeConfig(out=args.out, data=args.data, n=args.n, passes=args.passes, batch_size=args.batch_size,
                          workers=args.workers, image_size=args.image_size, width=args.width, height=args.height,
                          device=args.device, cpu_stand_in=args.cpu_stand_in, rows=args.rows)
    summary = bench_gpu_decode(cfg)
    save_rows(args, cfg.out, gpu_decode_rows(summary, run_config(args)))
    print(dumps(summary, indent=1) if args.json else format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    data = summary["dataset"]
    rows = summary["rows"]
    ref_rate = next(r["img_per_s"] for r in rows if r["pipeline"] == "reference_dataloader")
    lines = [f"{data['n']} JPEGs {data['width']}x{data['height']}, mean {data['mean_kb']:.1f} kB; "
             f"batch {summary['batch_size']}, {summary['workers']} workers, {summary['device_name']}, "
             f"{summary['cpu_count']} CPUs",
             f"{'pipeline':<28} {'images':>8} {'seconds':>8} {'img/s':>10} {'vs reference':>13}  note"]
    for r in rows:
        ratio = f"{r['img_per_s'] / ref_rate:.2f}x" if r["img_per_s"] else "-"
        lines.append(f"{r['pipeline']:<28} {r['images']:>8} {r['seconds']:>8.2f} {r['img_per_s']:>10.1f} "
                     f"{ratio:>13}  {r['note']}")
    if summary["threads_vs_inline"]:
        lines.append(f"decode threads (2) / inline: {summary['threads_vs_inline']:.2f}x")
    for kind, ratio in summary["endless_vs_per_epoch"].items():
        lines.append(f"ours_{kind}: one endless iteration / once per pass: {ratio:.2f}x")
    return "\n".join(lines)
