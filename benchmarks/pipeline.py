"""The bottleneck analyzer on the GPU presets, in one run, with its targets checked.

Runs ``mmscale bench pipeline`` (library call) for the ``base`` preset from JPEG files and prints
the figures the targets are about: stage sum vs wall-clock step (within 5%), data wait share
(< 5% of the step) and training from files vs synthetic device batches (>= 95%), plus the
monitor's overhead and rate. JSON rows go to --out; the full tables are printed first.

    PYTHONPATH=src python3 benchmarks/pipeline.py --out runs/pipeline               (GPU)
    PYTHONPATH=src python3 benchmarks/pipeline.py --preset tiny --device cpu --steps 2 \\
        --batch-size 4 --out runs/p  data.image_size=32 model.image_size=32     (CPU smoke)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="config overrides (data.*, model.*, train.*)")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--data", default="", help="JPEG dataset (default: synthesize)")
    parser.add_argument("--out", type=Path, default=Path("runs/pipeline"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--only", default="", help="comma list of groups (default: all)")
    parser.add_argument("--trace", default="", help="torch.profiler trace directory")
    args = parser.parse_args(argv)

    from rich.console import Console

    from mmscale.bench.pipeline import GROUPS, PipelineConfig, bench_pipeline
    from mmscale.bench.pipeline_table import render_tables

    groups = [g for g in args.only.split(",") if g] or list(GROUPS)
    cfg = PipelineConfig(preset=args.preset, overrides=args.overrides, data=args.data, out_dir=str(args.out),
                         device=args.device, steps=args.steps, batch_size=args.batch_size, groups=groups,
                         trace_dir=args.trace)
    result = bench_pipeline(cfg).as_dict()
    console = Console()
    render_tables(result, console)
    st = result["stages"]
    data_wait = st["shares"]["data_wait"]
    over = next((r["extra"].get("overhead_pct") for r in result["variants"] if r["variant"] == "monitor_on"), None)
    checks = [
        ("stage sum vs wall-clock step", f"{100 * abs(st['unattributed_frac']):.2f}% apart", abs(st["unattributed_frac"]) <= 0.05),
        ("data wait share of the step", f"{100 * data_wait:.1f}%", data_wait < 0.05),
        ("from files vs synthetic batches", f"{100 * result['from_files_vs_synthetic']:.1f}%",
         result["from_files_vs_synthetic"] >= 0.95),
        ("monitor overhead", "-" if over is None else f"{over:+.2f}%", None if over is None else over < 1.0),
        ("monitor rate", f"{result['monitor']['achieved_hz'] or 0:.1f} Hz", (result["monitor"]["achieved_hz"] or 0) >= 5 * 0.95),
    ]
    summary = {"verdict": result["verdict"]["name"], "checks": [
        {"check": c, "value": v, "met": m} for c, v, m in checks]}
    (args.out / "pipeline_checks.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{'target':<34} {'measured':>14}  met")
    for check, value, met in checks:
        print(f"{check:<34} {value:>14}  {'-' if met is None else ('yes' if met else 'NO')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
