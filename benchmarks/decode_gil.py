"""Does torchvision's JPEG decode let other Python threads run while it works? The table of
docs/notes/gpu-decode-and-the-gil.md (``mmscale.bench.decode.gil`` says what each figure means).

    PYTHONPATH=src python3 benchmarks/decode_gil.py --device cuda --out runs/decode_gil
    PYTHONPATH=src python3 benchmarks/decode_gil.py --device cpu --n 100 --out runs/decode_gil
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from mmscale.bench.decode.gil import bench_decode_gil, format_gil


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=4096, help="images per timing")
    parser.add_argument("--batch", type=int, default=256, help="images per nvjpeg call (cuda)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--out", default="runs/decode_gil")
    args = parser.parse_args(argv)
    result = bench_decode_gil(torch.device(args.device), args.n, args.batch, args.width, args.height)
    print(format_gil(result))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "decode_gil.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
