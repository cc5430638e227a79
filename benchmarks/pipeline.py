"""The bottleneck analyzer on the GPU presets, in one run, with its targets checked.

Runs ``mmscale bench pipeline`` (library call) for the ``base`` preset from JPEG files and prints
the figures the targets are about (``mmscale.bench.pipeline.targets``): stage sum vs wall-clock
step, data wait share, training from files vs synthetic device batches, the monitor's overhead and
rate. JSON rows go to --out; the full tables are printed first.

    PYTHONPATH=src python3 benchmarks/pipeline.py --out runs/pipeline               (GPU)
    PYTHONPATH=src python3 benchmarks/pipeline.py --preset tiny --device cpu --steps 2 \\
        --batch-size 4 --out runs/p  data.image_size=32 model.image_size=32     (CPU smoke)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from mmscale.bench.pipeline.analyze import GROUPS, PipelineConfig, bench_pipeline
from mmscale.bench.pipeline.table import render_tables
from mmscale.bench.pipeline.targets import format_checks, target_checks


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
    groups = [g for g in args.only.split(",") if g] or list(GROUPS)
    cfg = PipelineConfig(preset=args.preset, overrides=args.overrides, data=args.data, out_dir=str(args.out),
                         device=args.device, steps=args.steps, batch_size=args.batch_size, groups=groups,
                         trace_dir=args.trace)
    result = bench_pipeline(cfg).as_dict()
    render_tables(result, Console())
    checks = target_checks(result)
    (args.out / "pipeline_checks.json").write_text(json.dumps({"verdict": result["verdict"]["name"],
                                                               "checks": checks}, indent=1))
    print("\n" + format_checks(checks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
