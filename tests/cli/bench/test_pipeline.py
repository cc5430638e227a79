"""``mmscale bench pipeline`` end to end on CPU with a very small model: every part runs, GPU-only
parts are listed as skipped with a reason, and the JSON holds what the report needs."""

from __future__ import annotations

import json

import pytest

from mmscale.bench.pipeline.workers import WORKER_STAGES
from mmscale.cli import main

SMALL = ["data.image_size=32", "model.image_size=32", "model.image_depth=1", "model.image_patch_size=16",
         "data.max_text_len=8", "model.max_text_len=8", "data.num_workers=1"]


def test_pipeline_cli_on_cpu(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["bench", "pipeline", "--preset", "tiny", "--device", "cpu", "--out", str(out),
                 "--synth-samples", "40", "--batch-size", "4", "--steps", "2", "--warmup", "1",
                 "--only", "input,fusion_precision,compile,monitor_overhead,attention,workers",
                 "--text-lens", "8,16", "--batches", "2", "--trace", str(tmp_path / "trace"), "--json", *SMALL])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"] == "cpu" and result["decode"] == "cpu"
    stages = result["stages"]
    assert abs(stages["step_ms"] - stages["stages_sum_ms"]) <= 0.05 * stages["step_ms"]
    assert result["verdict"]["name"] in ("input-bound", "compute-bound")
    assert result["verdict"]["evidence"]
    variants = {(r["group"], r["variant"]): r for r in result["variants"]}
    assert variants[("input", "naive_loop")]["samples_per_s"] > 0
    assert variants[("input", "dataloader_cpu_decode")]["speedup"] is not None
    assert "CUDA" in variants[("input", "gpu_decode")]["skipped"]
    assert variants[("compile", "compile")]["skipped"]
    assert variants[("compile", "compile_step_graph")]["skipped"]  # CPU: neither compile nor CUDA graphs
    assert variants[("fusion_precision", "fused_bf16")]["samples_per_s"] > 0
    assert variants[("fusion_precision", "fused_bf16_weights")]["extra"]["weights"] == "bf16"
    assert variants[("fusion_precision", "fused_bf16_weights")]["samples_per_s"] > 0
    assert "overhead_pct" in variants[("monitor_overhead", "monitor_on")]["extra"]
    assert {r["impl"] for r in result["attention"]} == {"reference", "fused"}
    assert all(r["ms"] > 0 for r in result["attention"])
    workers = result["workers"]
    assert sum(workers["host_stage_ms"][k] for k in WORKER_STAGES) == pytest.approx(workers["worker_batch_ms"])
    assert "input.gpu_decode" in result["skipped"] and "gpu_idle_frac" in result["skipped"]
    assert (out / "results.json").is_file() and (out / "monitor.jsonl").stat().st_size > 0
    assert (tmp_path / "trace" / "pipeline_trace.json").stat().st_size > 0
    assert result["monitor"]["n_samples"] >= 1


def test_pipeline_cli_table_and_bad_input(tmp_path, capsys):
    code = main(["bench", "pipeline", "--device", "cpu", "--out", str(tmp_path), "--synth-samples", "16",
                 "--batch-size", "4", "--steps", "1", "--warmup", "0", "--only", "workers", *SMALL])
    assert code == 0
    text = capsys.readouterr().out
    assert "verdict:" in text and "Host stages per batch" in text and "step (wall clock)" in text
    assert main(["bench", "pipeline", "--only", "nonsense", "--out", str(tmp_path)]) == 2
    assert "pipeline.groups" in capsys.readouterr().err
    assert main(["bench", "pipeline", "--out", str(tmp_path), "train.bogus=1"]) == 2
