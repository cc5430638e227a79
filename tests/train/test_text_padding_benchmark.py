"""CPU smoke run of benchmarks/text_padding.py: two paddings of the same captions, FLOPs and
step times of each, and the ratios computed from them."""

import json

import pytest

from mmscale.data.synth_scene import render_scene, scene_caption


def test_caption_alone_is_the_rendered_scenes_caption():
    for index in (0, 7, 123):
        assert scene_caption(3, index) == render_scene(3, index)[1]


def test_text_padding_benchmark_cpu_smoke(tmp_path, capsys, load_benchmark):
    bench = load_benchmark("text_padding")
    assert bench.main(["--preset", "tiny", "--device", "cpu", "--batch", "4", "--steps", "1", "--rounds", "2",
                       "--warmup", "1", "--no-compile", "--out", str(tmp_path), "model.max_text_len=128"]) == 0
    result = json.loads((tmp_path / "text_padding.json").read_text())
    full, short = result["rows"]
    assert full["text_tokens"] == 128 and short["text_tokens"] % 16 == 0 and short["text_tokens"] < 128
    assert len(full["times_ms"]) == len(short["times_ms"]) == 2
    assert result["summary"]["flops_ratio"] == pytest.approx(short["gflops_per_sample"] / full["gflops_per_sample"])
    assert result["summary"]["flops_ratio"] < 1
    assert result["summary"]["speedup"] == pytest.approx(full["step_ms"] / short["step_ms"])
    assert "padded to the longest / to max_text_len" in capsys.readouterr().out
