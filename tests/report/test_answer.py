"""The answer block's figures, computed from a constructed results dict whose answer is known."""

from __future__ import annotations

import pytest

from mmscale.report.answer import answer


def by_id(a: dict) -> dict:
    return {p["id"]: p for p in a["predictions"]}


def test_throughput_and_bottleneck(helpers):
    a = answer(helpers.full_results())
    thr = a["throughput"]
    assert thr["value"] == pytest.approx(100_000 / 105.1) and "GPU (NVIDIA H100" in thr["what"]
    assert thr["ms_per_sample"] == pytest.approx(1.051)
    assert a["bottleneck"] == {"verdict": "input-bound", "step_ms": 100.0, "stage": "backward", "stage_ms": 50.0,
                               "share": 0.5, "input_share": pytest.approx(0.3)}


def test_predictions_carry_fit_interval_and_confirmation(helpers):
    p = by_id(answer(helpers.full_results()))
    batch = p["batchsweep.bf16.max_batch"]
    assert batch["basis"] == "predicted" and batch["value"] == pytest.approx(772, abs=3)
    assert batch["low"] < batch["value"] < batch["high"] and "MiB/sample" in batch["fit"]
    assert "first out-of-memory" in batch["confirm"]
    at_1m = p["datascale.samples_per_s@1000000"]
    assert at_1m["value"] == pytest.approx(1e6 / (1e6 / 1000 + 5), rel=0.01)
    assert at_1m["low"] < at_1m["value"] < at_1m["high"] and "sizes=[1000000]" in at_1m["confirm"]
    at_10m = p["datascale.samples_per_s@10000000"]
    assert at_10m["high"] - at_10m["low"] > at_1m["high"] - at_1m["low"]  # further out, wider
    eight = p["scaling.ddp.weak.efficiency@x8"]
    assert eight["value"] == pytest.approx(100 / (100 + 10 * 1.75))
    assert eight["low"] < eight["value"] < eight["high"] and "2(n-1)/n" in eight["fit"]


def test_changes_ranked_by_gain_against_the_runs_own_configuration(helpers):
    a = answer(helpers.full_results())
    assert [c["change"] for c in a["changes"]] == [
        "input: gpu_decode → gpu_decode_1thread", "batch 64 → 256 (bf16)"]
    assert [round(c["gain_rel"], 3) for c in a["changes"]] == [0.3, round(820 / 700 - 1, 3)]
    # fp32 at the same batch is no faster (700 vs 700): not listed; cpu decode is slower: not listed


def test_missing_sections_say_why_and_lines_cover_every_question(helpers):
    doc = helpers.full_results()
    del doc["sections"]["scaling"], doc["sections"]["datascale"]
    a = answer(doc)
    p = by_id(a)
    assert p["datascale.samples_per_s@1000000"]["value"] is None
    assert a["throughput"]["source"] == "pipeline main run"
    evidence = [line for line in a["lines"] if line.startswith("    fit: ")]
    assert len(evidence) == 1 and "confirm with: a batch sweep" in evidence[0]  # max batch is the one prediction left
    assert len(a["lines"]) == 2 + len(a["predictions"]) + len(evidence) + 1 + 1  # + changes + flags
    assert any("not predicted" in line and "scaling" in line for line in a["lines"])
    assert any(line.startswith("1 figure(s) outside physical bounds") for line in a["lines"])


def test_a_weak_datascale_fit_gives_no_point_prediction(helpers):
    doc = helpers.full_results()
    for row, wall_s in zip(doc["sections"]["datascale"]["rows"], (40.0, 12.0, 60.0)):  # no line through these
        row["train_wall_s"] = wall_s
    at_1m = by_id(answer(doc))["datascale.samples_per_s@1000000"]
    assert at_1m["value"] is None and at_1m["low"] is None
    assert "time fit is weak (R² 0." in at_1m["reason"] and "R² 0." in at_1m["fit"]
    top = max(doc["sections"]["datascale"]["rows"], key=lambda r: r["n_samples"])
    assert f"measured {top['n_samples'] / 60.0:.3g} samples/s" in at_1m["reason"]


def test_a_measured_max_batch_replaces_the_prediction(helpers):
    doc = helpers.full_results()
    doc["sections"]["batchsweep"]["tables"][0]["rows"][0].update(found_max_batch=700, first_oom_batch=704)
    batch = by_id(answer(doc))["batchsweep.bf16.max_batch"]
    assert (batch["basis"], batch["value"], batch["first_oom"]) == ("measured", 700, 704)
    assert batch["predicted"] == pytest.approx(772, abs=3)


def test_a_sweep_that_ended_on_an_error_says_so_beside_the_prediction(helpers):
    doc = helpers.full_results()
    doc["sections"]["batchsweep"]["rows"].append({"variant": "bf16", "batch_size": 512, "phase": "double",
                                                  "status": "error", "peak_bytes": None,
                                                  "error": "ConstraintViolationError: Constraints violated (x)! more"})
    batch = by_id(answer(doc))["batchsweep.bf16.max_batch"]
    assert batch["basis"] == "predicted" and batch["value"] == pytest.approx(772, abs=3)
    assert "ended at batch 512 on an error that is not a memory limit (ConstraintViolationError" in batch["confirm"]


def test_a_batch_gain_inside_the_steps_spread_is_not_listed(helpers):
    doc = helpers.full_results()
    for row in doc["sections"]["batchsweep"]["rows"]:
        if row["batch_size"] in (64, 256):  # 700 vs 820 samples/s, but steps that scatter by 2x
            per_sample_ms = 1e3 / row["samples_per_s"]
            row["step_ms_values"] = [row["batch_size"] * per_sample_ms * f for f in (0.6, 1.0, 1.4)]
    assert [c["change"] for c in answer(doc)["changes"]] == ["input: gpu_decode → gpu_decode_1thread"]


def test_one_scaling_prediction_per_strategy_and_throughput_from_one_rank_alone(helpers):
    doc = helpers.full_results()
    for name in ("pipeline", "datascale", "batchsweep"):
        doc["sections"][name] = {**doc["sections"][name], "status": "skipped", "reason": "not in validate.sections"}
    fsdp = [{**r, "strategy": "fsdp", "step_ms": r["step_ms"] * 1.5,
             "step_ms_values": [t * 1.5 for t in r["step_ms_values"]],
             "nosync_step_ms": r["nosync_step_ms"] and 120.0, "efficiency": 0.6 if r["world_size"] > 1 else 1.0}
            for r in doc["sections"]["scaling"]["rows"]]
    doc["sections"]["scaling"]["rows"] += fsdp
    for r in doc["sections"]["scaling"]["rows"]:
        r.update(global_batch=64, samples_per_s=64 / (r["step_ms"] / 1e3))
    a = answer(doc)
    ids = [p["id"] for p in a["predictions"] if p["id"] and p["id"].startswith("scaling.")]
    assert ids == ["scaling.ddp.weak.efficiency@x8", "scaling.fsdp.weak.efficiency@x8"]  # best first
    assert a["throughput"]["value"] == pytest.approx(640.0) and "one rank" in a["throughput"]["source"]
    assert a["bottleneck"]["reason"] == "the pipeline section was not run: not in validate.sections"


def test_weights_auto_counts_as_bf16_weights_so_the_default_is_never_proposed(helpers):
    doc = helpers.full_results()
    doc["config"]["train"]["weights"] = "auto"
    doc["sections"]["pipeline"]["rows"] += [
        {"group": "fusion_precision", "variant": "fused_bf16", "samples_per_s": 400.0, "skipped": ""},
        {"group": "fusion_precision", "variant": "fused_bf16_weights", "samples_per_s": 550.0, "skipped": ""}]
    changes = [c["change"] for c in answer(doc)["changes"]]
    assert not any(c.startswith("fusion_precision") for c in changes)
    doc["config"]["train"]["grad_accum"] = 2  # the runtime keeps fp32 weights: bf16 weights are a change
    assert "fusion_precision: fused_bf16 → fused_bf16_weights" in [c["change"] for c in answer(doc)["changes"]]
