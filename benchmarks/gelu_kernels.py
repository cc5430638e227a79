"""GELU kernels against the memory ceiling: torch's erf GELU vs the polynomial-erf one, one run
(``mmscale.bench.gelu_kernels`` lists the rows). The figures behind ``model.gelu``'s default.

    PYTHONPATH=src python3 benchmarks/gelu_kernels.py --out runs/gelu_kernels
    PYTHONPATH=src python3 benchmarks/gelu_kernels.py --device cpu --smoke --out runs/gelu_smoke
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mmscale.bench.gelu_kernels import bench_gelu_kernels, format_gelu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--iters", type=int, default=20, help="calls per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; rows alternate within each")
    parser.add_argument("--smoke", action="store_true", help="small shapes (CPU check of the script)")
    parser.add_argument("--no-compile", action="store_true",
                        help="eager (rows still run; the poly_mlp module then runs torch's GELU)")
    parser.add_argument("--out", type=Path, default=Path("runs/gelu_kernels"))
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    result = bench_gelu_kernels(device, args.iters, args.rounds, args.smoke, compiled=not args.no_compile)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gelu_kernels.json").write_text(json.dumps(result, indent=2))
    print(format_gelu(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
