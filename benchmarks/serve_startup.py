"""What CUDA graphs cost the server at start: seconds to ready, device memory, graphs
(``mmscale.bench.serving.startup``; the H200 figures are in docs/performance.md, Serving).

    PYTHONPATH=src python3 benchmarks/serve_startup.py --preset base --out runs/serve_startup   # GPU
    PYTHONPATH=src python3 benchmarks/serve_startup.py --cpu-smoke --out runs/serve_startup     # CPU

The CPU smoke starts the ``tiny`` model without graphs (graphs need CUDA) and checks the plumbing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmscale.bench.serving.startup import SETTINGS, bench_startup, format_startup, server_args
from mmscale.cli.bench.args import name_list


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--max-batch", type=int, default=256, help="as mmscale bench serve runs the server")
    parser.add_argument("--frontends", type=int, default=4)
    parser.add_argument("--settings", type=name_list(SETTINGS, "setting"), default=["cg", "cgc4", "none"],
                        help="comma list, the first is the base of the ratios; from " + ",".join(SETTINGS))
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU, no graphs")
    parser.add_argument("--out", default="runs/serve_startup")
    args = parser.parse_args(argv)
    keys = ["none"] if args.cpu_smoke else args.settings
    doc = bench_startup(keys, server_args(args.preset, args.max_batch, args.frontends, args.cpu_smoke),
                        say=lambda line: print(line, flush=True))
    print("\n" + format_startup(doc["rows"]))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "serve_startup.json").write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
