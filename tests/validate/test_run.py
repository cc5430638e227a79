"""validate end to end on a tiny set: results.json valid against its schema, report.html opened
in headless Chromium with every plot loaded and no empty section; a failing section is reported
while the others still run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mmscale import validate as validate_mod
from mmscale.report.results import read_results, validation_errors

_spec = importlib.util.spec_from_file_location("report_helpers", Path(__file__).parents[1] / "report" / "report_helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

TINY = [
    "validate.synth_samples=200",
    "validate.datascale.sizes=[64,128]",
    "validate.batchsweep.start_batch=4", "validate.batchsweep.max_batch=16",
    "validate.batchsweep.timed_steps=2", "validate.batchsweep.bisect_steps=1",
    'validate.batchsweep.variants=["fp32","fsdp"]', "validate.batchsweep.memory_cap_gib=0.08",
    "validate.load.concurrency=[1,2]", "validate.load.window_s=0.5", "validate.load.max_windows=1",
    "validate.data.batches=3", "validate.pipeline.steps=2", "validate.pipeline.warmup=1",
    "validate.pipeline.groups=[\"fusion_precision\"]",
    "validate.scaling.cpu_smoke=false",
    "data.image_size=32", "model.image_size=32", "model.image_depth=1", "data.num_workers=0",
    "train.batch_size=32", "train.eval_samples=16",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate")
    results = validate_mod.validate("cpu", out_dir=out, overrides=TINY, show_progress=False)
    return out, results


def test_results_json_is_valid_and_complete(tiny_run):
    out, results = tiny_run
    doc = json.loads((out / "results.json").read_text())
    assert validation_errors(doc) == []
    assert read_results(out)["sections"].keys() == set(validate_mod.SECTION_ORDER) | {"monitor"}
    assert doc["environment"]["cpu_count"] >= 1 and doc["environment"]["torch"]["version"]
    assert doc["config"]["validate"]["datascale"]["sizes"] == [64, 128]
    assert doc["config"]["model"]["image_size"] == 32
    ds = doc["sections"]["datascale"]
    assert ds["status"] == "ok", ds["reason"]
    assert [r["n_samples"] for r in ds["rows"]] == [64, 128]
    assert ds["summary"]["time_fit"] if "time_fit" in ds["summary"] else True
    bs = doc["sections"]["batchsweep"]
    assert bs["status"] == "ok", bs["reason"]
    assert {r["variant"] for r in bs["rows"]} == {"fp32"}
    assert any("shard" in r["reason"] for t in bs["tables"] for r in t["rows"] if "reason" in r)
    assert doc["sections"]["scaling"]["status"] == "skipped" and "GPU" in doc["sections"]["scaling"]["reason"]
    assert any(k.startswith("datascale.samples_per_s@") for k in doc["metrics"])
    assert (out / "monitor.jsonl").is_file()
    answer = doc["answer"]  # the top of the report, computed from these sections
    assert answer["throughput"]["value"] > 0 and answer["bottleneck"].get("stage")
    assert "datascale.samples_per_s@1000000" in {p["id"] for p in answer["predictions"]}
    assert (out / "pipeline.trace.json").is_file() and any((out / "csv").glob("datascale-*.csv"))
    torch_trace = doc["sections"]["pipeline"]["summary"].get("trace")
    assert torch_trace and (out / torch_trace).is_file()  # linked from the report, relative to it
    for name, section in doc["sections"].items():
        assert section["status"] != "failed", (name, section["reason"], section["error"])


def test_report_opens_in_chromium_with_every_plot_and_no_empty_section(tiny_run):
    if not helpers.chromium_binary():
        pytest.skip("Debian chromium is not installed")
    out, _ = tiny_run
    seen = helpers.check_in_chromium(out / "report.html")
    assert len(seen["images"]) >= 4  # time vs N, memory vs N, memory vs batch, throughput, timeline
    bad = [img for img in seen["images"] if not (img["complete"] and img["width"] > 0)]
    assert not bad, bad
    ids = {s["id"] for s in seen["sections"]}
    assert {f"section-{n}" for n in validate_mod.SECTION_ORDER} <= ids
    empty = [s["id"] for s in seen["sections"] if s["chars"] == 0]
    assert not empty


def test_report_rerender_is_identical(tiny_run):
    from mmscale.report.html import render_report

    out, _ = tiny_run
    assert render_report(read_results(out)) == (out / "report.html").read_text()


def test_a_failing_section_is_reported_and_the_rest_still_run(tmp_path, monkeypatch):
    from mmscale.validate import sections as validate_sections

    def broken(ctx):
        raise RuntimeError("constructed failure")

    monkeypatch.setitem(validate_sections.RUNNERS, "pipeline", broken)
    data = tmp_path / "data"
    data.mkdir()
    results = validate_mod.validate(
        "cpu", data_dir=str(data), out_dir=tmp_path / "run", show_progress=False,
        overrides=['validate.sections=["pipeline","batchsweep"]', "validate.batchsweep.start_batch=2",
                   "validate.batchsweep.max_batch=4", "validate.batchsweep.timed_steps=1",
                   'validate.batchsweep.variants=["fp32"]', "data.image_size=32", "model.image_size=32",
                   "model.image_depth=1"])
    pipeline = results["sections"]["pipeline"]
    assert pipeline["status"] == "failed" and "constructed failure" in pipeline["reason"]
    assert "RuntimeError" in pipeline["error"]
    after = results["sections"]["batchsweep"]
    assert after["status"] == "ok" and [r["batch_size"] for r in after["rows"]] == [2, 4]
    assert results["sections"]["datascale"]["status"] == "skipped"
    html = (tmp_path / "run" / "report.html").read_text()
    assert "constructed failure" in html


@pytest.mark.parametrize("preset", ["cpu", "gpu"])
def test_presets_load_into_every_table(preset):
    configs = validate_mod.load_configs(preset)
    assert configs.validate.sections == list(validate_mod.SECTION_ORDER)
    assert configs.job.model.image_size == configs.job.data.image_size
    assert configs.validate.synth_samples * 0.9 >= max(configs.validate.datascale.sizes)
    for variant in configs.validate.batchsweep.variants:
        from mmscale.bench.batchsweep import VARIANTS

        assert variant in VARIANTS


def test_gpu_preset_runs_the_reference_sizes_with_the_training_defaults(monkeypatch):
    from mmscale.train.runtime import resolve_runtime

    configs = validate_mod.load_configs("gpu")
    assert configs.validate.datascale.sizes == [10_000, 50_000, 100_000]
    assert configs.job.model.image_encoder == "vit_base_patch16_224"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)  # what it resolves to on a GPU host
    runtime = resolve_runtime(configs.job.train)
    assert runtime.compile and runtime.step_graph and runtime.precision.weights == "bf16"


def test_overrides_go_to_the_table_they_name():
    from mmscale.errors import ConfigError

    configs = validate_mod.load_configs("cpu", ["train.batch_size=8", "validate.datascale.sizes=[10,20]"])
    assert configs.job.train.batch_size == 8 and configs.validate.datascale.sizes == [10, 20]
    with pytest.raises(ConfigError, match="validate.batchsweep.bogus"):
        validate_mod.load_configs("cpu", ["validate.batchsweep.bogus=1"])
    with pytest.raises(ConfigError, match="overrides must start"):
        validate_mod.load_configs("cpu", ["serve.port=1"])


def test_sections_on_synthetic_tensors_alone_synthesize_no_dataset(tmp_path, monkeypatch):
    from mmscale.validate import sections as validate_sections
    from mmscale.report.results import new_section

    seen = []

    def runner(ctx):
        seen.append(ctx.data_path)
        return new_section(validate_sections.TITLES["scaling"])

    monkeypatch.setitem(validate_sections.RUNNERS, "scaling", runner)
    results = validate_mod.validate("cpu", out_dir=tmp_path / "run", show_progress=False,
                                    overrides=['validate.sections=["scaling"]', "validate.synth_samples=50"])
    assert results["sections"]["scaling"]["status"] == "ok" and len(seen) == 1
    assert not (tmp_path / "run" / "data").exists()
    # a section that reads the dataset still gets one synthesized
    monkeypatch.setitem(validate_sections.RUNNERS, "data", runner)
    validate_mod.validate("cpu", out_dir=tmp_path / "run2", show_progress=False,
                          overrides=['validate.sections=["data"]', "validate.synth_samples=50"])
    assert (tmp_path / "run2" / "data" / "train.jsonl").is_file() and seen[-1] == tmp_path / "run2" / "data"


def test_scaling_verdicts_judge_gpus_only():
    from mmscale.validate.sections import scaling_level

    assert [scaling_level(e, "cuda") for e in (0.93, 0.85, 0.6)] == ["pass", "pass", "warn"]
    assert [scaling_level(e, "cpu") for e in (0.93, 0.6)] == ["info", "info"]  # gloo smoke test


def test_one_benchmark_alone_writes_its_own_monitor_timeline(tmp_path):
    """``mmscale bench batchsweep`` (and datascale, scaling) samples the hardware like validate does."""
    section = validate_mod.run_one_section(
        "batchsweep", "cpu", ["validate.batchsweep.start_batch=2", "validate.batchsweep.max_batch=2",
                              "validate.batchsweep.timed_steps=1", 'validate.batchsweep.variants=["fp32"]',
                              "data.image_size=32", "model.image_size=32", "model.image_depth=1",
                              "validate.monitor_interval_s=0.05"],
        out_dir=tmp_path, show_progress=False)
    assert section["status"] == "ok"
    doc = json.loads((tmp_path / "batchsweep.json").read_text())
    rows = [json.loads(line) for line in open(tmp_path / "batchsweep.monitor.jsonl")]
    samples = [r for r in rows if "mark" not in r]
    assert doc["monitor"]["summary"]["n_samples"] >= len(samples) >= 2
    assert all("cpu_pct" in r for r in samples)
    assert [r["mark"] for r in rows if "mark" in r] == ["batchsweep start"]
