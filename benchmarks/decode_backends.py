"""JPEG decoders side by side in one process (``mmscale.bench.decode.backends``): PIL, torchvision and
TorchCodec on CPU, nvjpeg batches on CUDA. The "JPEG decoders on CPU" table of docs/performance.md.

    PYTHONPATH=src python3 benchmarks/decode_backends.py --n 150 --repeats 9 --out runs/db
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmscale.bench.decode.backends import bench_decode_backends
from mmscale.environment import fingerprint
from mmscale.strict_json import write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="images per timed pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128, help="images per GPU batch decode (CUDA rows)")
    parser.add_argument("--out", default="runs/decode_backends")
    args = parser.parse_args(argv)
    rows = bench_decode_backends(args.n, args.repeats, args.size, args.batch)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "decode_backends.json", {"rows": rows, "environment": fingerprint()}, indent=1)
    for row in rows:
        print(f"{row['row']:<28} {row['img_per_s']:>8.1f} img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
