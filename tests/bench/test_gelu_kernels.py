"""CPU smoke run of the GELU kernel comparison: every row timed, bytes counted, ratios and the
accuracy columns computed from them."""

import pytest
import torch

from mmscale.bench.gelu_kernels import bench_gelu_kernels, format_gelu


def test_gelu_kernels_cpu_smoke():
    result = bench_gelu_kernels(torch.device("cpu"), iters=2, rounds=2, smoke=True, compiled=False)
    assert set(result["shapes"]) == {"vit", "bert"}
    for shape in result["shapes"].values():
        rows = shape["rows"]
        assert set(rows) == {"copy", "mul", "erf_fwd", "poly_fwd", "erf_bwd", "poly_bwd", "erf_mlp", "poly_mlp"}
        for kind in ("fwd", "bwd", "mlp"):
            assert rows[f"poly_{kind}"]["speedup_vs_erf"] == pytest.approx(rows[f"erf_{kind}"]["ms"] / rows[f"poly_{kind}"]["ms"])
        assert rows["erf_bwd"]["bytes"] == 3 * shape["tokens"] * shape["width"] * 2  # bf16: 2 reads, 1 write
        for name in ("erf_fwd", "poly_fwd", "erf_bwd", "poly_bwd"):
            assert 0.0 <= rows[name]["bf16_off_truth"] < 0.1
    assert "bf16 off truth" in format_gelu(result)
