"""CPU smoke run of benchmarks/gelu_kernels.py: every row timed, bytes counted, ratios and the
accuracy columns computed from them."""

import json

import pytest


def test_gelu_kernels_benchmark_cpu_smoke(tmp_path, capsys, load_benchmark):
    bench = load_benchmark("gelu_kernels")
    assert bench.main(["--device", "cpu", "--smoke", "--no-compile", "--iters", "2", "--rounds", "2",
                       "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gelu_kernels.json").read_text())
    assert set(result["shapes"]) == {"vit", "bert"}
    for shape in result["shapes"].values():
        rows = shape["rows"]
        assert set(rows) == {"copy", "mul", "erf_fwd", "poly_fwd", "erf_bwd", "poly_bwd", "erf_mlp", "poly_mlp"}
        for kind in ("fwd", "bwd", "mlp"):
            assert rows[f"poly_{kind}"]["speedup_vs_erf"] == pytest.approx(rows[f"erf_{kind}"]["ms"] / rows[f"poly_{kind}"]["ms"])
        assert rows["erf_bwd"]["bytes"] == 3 * shape["tokens"] * shape["width"] * 2  # bf16: 2 reads, 1 write
        for name in ("erf_fwd", "poly_fwd", "erf_bwd", "poly_bwd"):
            assert 0.0 <= rows[name]["bf16_off_truth"] < 0.1
    assert "bf16 off truth" in capsys.readouterr().out
