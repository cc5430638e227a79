"""``mmscale bench train-step``: every row runs on CPU at tiny sizes, the rows are the configurations
they name, and the ratios are ours over each row."""

import json

from mmscale.bench.train_step import BenchSpec, StepRow, bench_train_step, job_for, ratios
from mmscale.cli import main
from mmscale.train.runtime import resolve_runtime

TINY = BenchSpec(preset="tiny", batch=2, steps=2, warmup=1)


def test_the_reference_rows_are_the_seed_design_and_ours_is_the_product():
    fp32 = job_for(TINY, "reference_fp32")
    assert (fp32.model.fusion, fp32.model.patch_embed, fp32.model.gelu) == ("reference", "conv", "erf")
    assert resolve_runtime(fp32.train).describe() == "cpu x1, fp32, eager"
    compiled = resolve_runtime(job_for(TINY, "reference_bf16_compile").train)
    assert compiled.compile and compiled.precision.name == "bf16" and compiled.precision.weights == "fp32"
    ours = job_for(TINY, "ours")
    assert (ours.model.fusion, ours.model.patch_embed, ours.model.gelu) == ("fused", "matmul", "erf_poly")


def test_ratios_are_ours_over_each_row_that_ran():
    rows = [StepRow("reference_fp32", 4, "cpu", samples_per_s=10.0), StepRow("ours", 4, "cpu", samples_per_s=40.0),
            StepRow("hf_blip_itm", 4, "cpu", status="oom")]
    assert ratios(rows) == {"ours_over_reference_fp32": 4.0}
    assert ratios(rows[:1]) == {}


def test_the_rows_run_on_cpu_and_the_command_writes_strict_json(tmp_path, capsys):
    result = bench_train_step(BenchSpec(preset="tiny", batch=2, steps=1, warmup=1, rows=("reference_fp32", "ours")))
    assert [r["variant"] for r in result["rows"]] == ["reference_fp32", "ours"]
    assert all(r["status"] == "ok" and r["samples_per_s"] > 0 and r["gflops_per_sample"] > 0 for r in result["rows"])
    assert set(result["ratios"]) == {"ours_over_reference_fp32"}
    code = main(["bench", "train-step", "--preset", "tiny", "--batch", "2", "--steps", "1", "--warmup", "1",
                 "--rows", "ours", "--out", str(tmp_path), "train.step_graph=false"])
    assert code == 0
    written = json.loads((tmp_path / "train_step.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert written["spec"]["overrides"] == ["train.step_graph=false"]
    assert "ours:" in capsys.readouterr().out
