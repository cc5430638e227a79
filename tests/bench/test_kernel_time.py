"""The kernel breakdown: names to kinds, overlaps counted once, host gap, a real profiler trace."""

import pytest
import torch

from mmscale.bench.kernel_time import busy_us, category, format_breakdown, kernel_breakdown, profile_steps


@pytest.mark.parametrize("name, kind", [
    ("nvjet_tst_128x256_64x4_2x1_v_bz_coopB_TNN", "matmul"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "matmul"),
    ("triton_tem_fused_addmm_0", "matmul"),
    ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x64", "attention"),
    ("fmha_cutlassB_bf16_aligned_64x64_k64_sm80", "attention"),
    ("triton_per_fused_add_native_layer_norm_native_layer_norm_backward_7", "layer_norm"),
    ("triton_poi_fused_gelu_gelu_backward_12", "gelu"),
    ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>", "optimizer"),
    ("triton_red_fused__to_copy_sum_3", "elementwise"),
    ("Memset (Device)", "copy_memset"),
    ("some_unknown_kernel", "other"),
])
def test_category_of_kernel_names(name, kind):
    assert category(name) == kind


def test_busy_time_counts_overlaps_once():
    assert busy_us([(0, 10), (5, 15), (20, 25), (21, 22)]) == 20
    assert busy_us([]) == 0


def test_breakdown_per_step_and_host_gap():
    events = [
        {"cat": "kernel", "name": "nvjet_a", "ts": 0, "dur": 4000, "args": {"grid": [132, 1, 1]}},
        {"cat": "kernel", "name": "triton_poi_fused_gelu_1", "ts": 4000, "dur": 1000},
        {"cat": "kernel", "name": "nvjet_b", "ts": 10000, "dur": 4000},
        {"cat": "gpu_memset", "name": "Memset (Device)", "ts": 13000, "dur": 2000},  # overlaps nvjet_b
        {"cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 9000},  # host op: not device time
    ]
    out = kernel_breakdown(events, steps=2, wall_ms_per_step=10.0)
    assert out["ms"] == {"matmul": 4.0, "copy_memset": 1.0, "gelu": 0.5}
    assert list(out["ms"]) == ["matmul", "copy_memset", "gelu"]  # largest first
    assert out["sum_ms"] == pytest.approx(5.5)
    assert out["busy_ms"] == pytest.approx(5.0)  # 0-5 ms and 10-15 ms, over 2 steps
    assert out["host_gap_ms"] == pytest.approx(5.0)
    assert out["kernels_per_step"]["matmul"] == 1.0
    assert out["top"][0] == {"name": "nvjet_a", "kind": "matmul", "ms": 2.0, "per_step": 0.5, "grid": [132, 1, 1],
                             "launched_by": [], "launchers": []}  # the trace holds no runtime calls
    assert out["top"][1]["grid"] is None  # a trace event without args
    assert [k["name"] for k in out["top"]] == ["nvjet_a", "nvjet_b", "Memset (Device)", "triton_poi_fused_gelu_1"]
    assert [k["name"] for k in kernel_breakdown(events, steps=2, wall_ms_per_step=10.0, top=1)["top"]] == ["nvjet_a"]
    with pytest.raises(ValueError):
        kernel_breakdown(events, steps=0, wall_ms_per_step=1.0)


def test_each_top_kernel_names_the_host_ops_that_launched_it():
    events = [
        {"cat": "kernel", "name": "reduce_kernel", "ts": 500, "dur": 10, "args": {"correlation": 7}},
        {"cat": "kernel", "name": "graph_kernel", "ts": 600, "dur": 5, "args": {"correlation": 9}},
        {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 105, "dur": 2, "tid": 1, "args": {"correlation": 7}},
        {"cat": "cuda_runtime", "name": "cudaGraphLaunch", "ts": 305, "dur": 2, "tid": 1, "args": {"correlation": 9}},
        {"cat": "user_annotation", "name": "step", "ts": 90, "dur": 300, "tid": 1},
        {"cat": "python_function", "name": "clip_grad_norm_", "ts": 100, "dur": 100, "tid": 1},
        {"cat": "cpu_op", "name": "aten::linalg_vector_norm", "ts": 104, "dur": 6, "tid": 1},
        {"cat": "cpu_op", "name": "aten::mul_", "ts": 120, "dur": 5, "tid": 1},  # after the launch
        {"cat": "cpu_op", "name": "aten::sum", "ts": 100, "dur": 50, "tid": 2},  # another thread
        {"cat": "cpu_op", "name": "aten::sum", "ts": 100, "dur": 50, "tid": 1, "ph": "X"},
        {"cat": "cpu_op", "name": "CUDAGraph::replay", "ts": 300, "dur": 10, "tid": 1},
    ]
    top = {k["name"]: k["launched_by"] for k in kernel_breakdown(events, steps=1, wall_ms_per_step=1.0)["top"]}
    # outer to inner, the last three host spans, then the runtime call
    assert top["reduce_kernel"] == ["clip_grad_norm_", "aten::sum", "aten::linalg_vector_norm", "cudaLaunchKernel"]
    assert top["graph_kernel"] == ["step", "CUDAGraph::replay", "cudaGraphLaunch"]
    table = format_breakdown({"row": kernel_breakdown(events, steps=1, wall_ms_per_step=1.0)})
    assert "launched by: clip_grad_norm_ > aten::sum > aten::linalg_vector_norm > cudaLaunchKernel" in table


def test_same_named_kernels_are_split_by_the_op_that_launched_each():
    """Every memset is called "Memset (Device)": which ops ask for them, and how much each costs."""
    events, external = [], 100
    for i, (op, dur) in enumerate([("aten::zero_", 2), ("aten::zero_", 2), ("aten::cudnn_convolution", 5),
                                   ("aten::zero_", 2), (None, 1)]):
        events.append({"cat": "gpu_memset", "name": "Memset (Device)", "ts": 1000 + 10 * i, "dur": dur,
                       "args": {"correlation": i}})
        call_args = {"correlation": i}
        if op is not None:
            external += 1
            call_args["External id"] = external
            events.append({"cat": "cpu_op", "name": op, "ts": 10 * i, "dur": 5, "tid": 1,
                           "args": {"External id": external}})
        events.append({"cat": "cuda_runtime", "name": "cudaMemsetAsync", "ts": 10 * i + 1, "dur": 1, "tid": 1,
                       "args": call_args})
    (memset,) = kernel_breakdown(events, steps=1, wall_ms_per_step=1.0)["top"]
    assert memset["per_step"] == 5
    # by time: three zero_ (6 us), the convolution's (5 us), the call with no op around it (1 us)
    assert [(o["op"], o["per_step"]) for o in memset["launchers"]] == [
        ("aten::zero_", 3), ("aten::cudnn_convolution", 1), ("cudaMemsetAsync", 1)]
    assert memset["launchers"][0]["ms"] == pytest.approx(0.006)
    table = format_breakdown({"row": kernel_breakdown(events, steps=1, wall_ms_per_step=1.0)})
    assert "by op: aten::zero_ (3/step, 0.01 ms), aten::cudnn_convolution (1/step, 0.01 ms)" in table


def test_profile_steps_reads_a_real_trace(tmp_path):
    """The profiler's own Chrome-trace export is parsed; host ops stand in for kernels on CPU."""
    x = torch.randn(64, 64)
    trace = tmp_path / "t" / "trace.json"
    out = profile_steps(lambda: x @ x, lambda: None, steps=3, kinds=("cpu_op",), trace_path=trace, top=1)
    assert len(out["top"]) == 1
    assert trace.exists()
    assert out["busy_ms"] > 0 and out["wall_ms"] > 0
    assert out["kernels_per_step"]["other"] >= 1  # aten::matmul and aten::mm, once per step
    table = format_breakdown({"toy": out})
    assert "toy" in table and "host gap" in table
    assert "longest kernels, toy" in table and out["top"][0]["name"] in table
