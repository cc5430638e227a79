"""CPU smoke run of benchmarks/decode_backends.py: every decoder row timed on the same images."""

import json

import pytest


def test_decode_backends_benchmark_cpu_smoke(tmp_path, capsys, load_benchmark):
    pytest.importorskip("torchcodec.decoders")
    bench = load_benchmark("decode_backends")
    assert bench.main(["--n", "3", "--repeats", "2", "--size", "64", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "decode_backends.json").read_text())["rows"]
    assert [r["row"] for r in rows] == ["pil decode", "torchvision decode", "torchcodec decode",
                                        "pil to 64 (CPU path)", "torchvision to 64", "torchcodec to 64"]
    for row in rows:
        assert len(row["img_per_s_runs"]) == 2 and row["img_per_s"] > 0 and row["images"] == 3
    assert "torchcodec to 64" in capsys.readouterr().out
