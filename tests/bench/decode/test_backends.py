"""CPU smoke run of the decoder comparison: every decoder row timed on the same images."""

import pytest

from mmscale.bench.decode.backends import bench_decode_backends


def test_decode_backends_cpu_smoke():
    pytest.importorskip("torchcodec.decoders")
    rows = bench_decode_backends(n=3, repeats=2, size=64, batch=128)
    assert [r["row"] for r in rows] == ["pil decode", "torchvision decode", "torchcodec decode",
                                        "pil to 64 (CPU path)", "torchvision to 64", "torchcodec to 64"]
    for row in rows:
        assert len(row["img_per_s_runs"]) == 2 and row["img_per_s"] > 0 and row["images"] == 3
