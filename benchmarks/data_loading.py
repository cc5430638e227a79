"""Data loading: the reference pipeline vs ours on the same JPEGs, in one run (one command).

    PYTHONPATH=src python3 benchmarks/data_loading.py --n 2000 --workers 8 --repeats 3 --out runs/data_loading
    PYTHONPATH=src python3 benchmarks/data_loading.py --n 64 --workers 1 --out runs/data_loading_smoke   (CPU smoke)

Synthesizes ``--n`` 640x480 JPEGs into ``--out/synth`` unless ``--data`` names a dataset, runs
every variant of ``mmscale.bench.data_loading`` (reference loop, reference DataLoader, ours,
decode-only ceilings), writes ``data_loading.json`` and prints the table last. Both pipelines
read the BERT-uncased vocabulary shipped with mmscale (``MMSCALE_TOKENIZER`` overrides it).
"""

from __future__ import annotations

import argparse
import sys

from mmscale.cli import bench_data
from mmscale.cli.bench import at_least


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="dataset dir or manifest (default: synthesize)")
    parser.add_argument("--n", type=at_least(1), default=2000, help="images per variant")
    parser.add_argument("--workers", type=at_least(0), default=None, help="DataLoader workers (default min(8, cores))")
    parser.add_argument("--batch-size", type=at_least(1), default=32)
    parser.add_argument("--repeats", type=at_least(1), default=3, help="runs per variant (median reported)")
    parser.add_argument("--out", default="runs/data_loading")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--monitor-interval", type=float, default=0.2,
                        help="hardware monitor sample interval in seconds (0: off); timeline beside the JSON")
    return bench_data.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
