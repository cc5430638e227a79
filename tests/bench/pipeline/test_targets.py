"""The analyzer's figures held to the GPU presets' targets: on constructed results, and on a CPU run."""

from __future__ import annotations

from mmscale.bench.pipeline.analyze import PipelineConfig, bench_pipeline
from mmscale.bench.pipeline.targets import format_checks, target_checks


def result(unattributed=0.01, data_wait=0.02, files_vs_synthetic=0.97, overhead_pct=None, hz=5.0):
    variants = [] if overhead_pct is None else [{"variant": "monitor_on", "extra": {"overhead_pct": overhead_pct}}]
    return {"stages": {"unattributed_frac": unattributed, "shares": {"data_wait": data_wait}},
            "from_files_vs_synthetic": files_vs_synthetic, "variants": variants, "monitor": {"achieved_hz": hz}}


def test_each_target_is_met_or_missed_by_its_own_figure():
    assert [c["met"] for c in target_checks(result())] == [True, True, True, None, True]
    missed = target_checks(result(unattributed=-0.06, data_wait=0.05, files_vs_synthetic=0.94, overhead_pct=1.2,
                                  hz=4.7))
    assert [c["met"] for c in missed] == [False] * 5
    assert missed[0]["value"] == "6.00% apart" and missed[3]["value"] == "+1.20%"
    lines = format_checks(missed).splitlines()
    assert lines[0].startswith("target") and lines[-1].endswith("NO") and len(lines) == 6


def test_a_cpu_run_of_the_analyzer_adds_up(tmp_path):
    cfg = PipelineConfig(preset="tiny", device="cpu", steps=1, batch_size=4, groups=["workers"], out_dir=str(tmp_path),
                         overrides=["data.image_size=32", "model.image_size=32", "model.image_depth=1",
                                    "model.image_patch_size=16", "data.num_workers=1"])
    checks = target_checks(bench_pipeline(cfg).as_dict())
    assert checks[0]["met"] is True  # stages add up to the step
