"""CPU smoke runs of the training benchmarks: every row runs and the table is printed."""

import json
from pathlib import Path

import pytest

def test_train_step_smoke_runs_every_row(tmp_path, capsys, load_benchmark):
    bench = load_benchmark("train_step")
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "0", "--out", str(tmp_path)])
    statuses = {row["variant"]: row["status"] for row in result["rows"]}
    assert set(statuses) == set(bench.VARIANTS)
    assert all(status.startswith("ok") for status in statuses.values()), statuses
    assert all(row["samples_per_s"] > 0 and row["gflops_per_sample"] > 0 for row in result["rows"])
    assert "ours_over_reference_fp32" in result["ratios"]
    assert json.loads((tmp_path / "train_step.json").read_text())["batch"] == 4
    out = capsys.readouterr().out
    assert "ours_over_hf_blip_itm" in out
    assert out.index(f"[1/{len(bench.VARIANTS)}] reference_fp32:") < out.index("variant ")  # each row as it ends


def test_ratios_are_ours_over_each_row(load_benchmark):
    bench = load_benchmark("train_step")
    rows = [bench.StepRow("ours", 4, "cpu", samples_per_s=300.0),
            bench.StepRow("reference_fp32", 4, "cpu", samples_per_s=100.0),
            bench.StepRow("hf_blip_itm", 4, "cpu", status="oom")]
    assert bench.ratios(rows) == {"ours_over_reference_fp32": pytest.approx(3.0)}


def test_ratios_of_the_other_ours_rows_are_over_the_references_and_ours(load_benchmark):
    bench = load_benchmark("train_step")
    rows = [bench.StepRow("ours", 4, "cpu", samples_per_s=200.0),
            bench.StepRow("ours_step_graph", 4, "cpu", samples_per_s=250.0),
            bench.StepRow("reference_fp32", 4, "cpu", samples_per_s=25.0),
            bench.StepRow("reference_bf16_compile", 4, "cpu", samples_per_s=100.0),
            bench.StepRow("hf_blip_itm", 4, "cpu", samples_per_s=50.0)]
    assert bench.ratios(rows) == pytest.approx({
        "ours_over_reference_fp32": 8.0, "ours_over_reference_bf16_compile": 2.0, "ours_over_hf_blip_itm": 4.0,
        "ours_step_graph_over_reference_fp32": 10.0, "ours_step_graph_over_reference_bf16_compile": 2.5,
        "ours_step_graph_over_hf_blip_itm": 5.0, "ours_step_graph_over_ours": 1.25})


def test_train_step_fp8_row_converts_linears_and_runs(tmp_path, load_benchmark):
    pytest.importorskip("torchao")
    bench = load_benchmark("train_step")
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "0", "--variants", "ours,ours_fp8",
                         "--fp8-layers", "all", "--attention", "flash"])
    rows = {row["variant"]: row for row in result["rows"]}
    assert rows["ours_fp8"]["status"].startswith("ok"), rows["ours_fp8"]["status"]
    assert rows["ours_fp8"]["fp8_linears"] > 0 and rows["ours"]["fp8_linears"] == 0
    assert {row["attention"] for row in result["rows"]} == {"flash"}
    assert "ours_fp8_over_ours" in result["ratios"]


def test_train_step_kernels_flag_profiles_each_row(load_benchmark, capsys):
    """--kernels adds a profiled breakdown per row; on CPU no device kernels run, so all the
    profiled wall time is host time."""
    bench = load_benchmark("train_step")
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "0", "--kernels", "1",
                         "--variants", "ours,ours_bf16_weights_graphs"])
    rows = {row["variant"]: row for row in result["rows"]}
    assert rows["ours_bf16_weights_graphs"]["status"] == "ok (compile off)"
    for row in rows.values():
        kernels = row["kernels"]
        assert kernels["wall_ms"] > 0 and kernels["busy_ms"] == 0
        assert kernels["host_gap_ms"] == pytest.approx(kernels["wall_ms"])
    assert "kernel ms per step" in capsys.readouterr().out


def test_a_rows_inductor_settings_hold_while_it_runs_and_only_then(load_benchmark, monkeypatch):
    import torch
    import torch._inductor.config as inductor_config

    bench = load_benchmark("train_step")
    seen = {}
    measure = bench.measure

    def recording(row, *args, **kwargs):
        seen[row.variant] = inductor_config.coordinate_descent_tuning
        return measure(row, *args, **kwargs)
    monkeypatch.setattr(bench, "measure", recording)
    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "0",
                         "--variants", "ours_bf16_weights_step_graph_cdt,ours_bf16_weights_step_graph"])
    assert resets == []  # --smoke compiles nothing: no compiled graph to throw away
    assert all(row["status"].startswith("ok") for row in result["rows"])
    assert seen == {"ours_bf16_weights_step_graph_cdt": True, "ours_bf16_weights_step_graph": False}
    assert inductor_config.coordinate_descent_tuning is False


def test_a_compiled_row_with_inductor_settings_starts_from_a_fresh_dynamo_cache(load_benchmark, monkeypatch):
    """Dynamo would reuse the previous row's compiled graph (same model class), and the row's
    Inductor settings would never reach a compile."""
    import torch

    bench = load_benchmark("train_step")
    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    monkeypatch.setattr(bench, "measure", lambda row, *a, **k: row)
    args = bench.parse_args(["--smoke"])
    args.no_compile = False  # compile is what the reset is for; measure is stubbed, so nothing runs
    device = torch.device("cpu")
    bench.run_ours_or_reference(bench.SETTINGS["ours_bf16_weights_step_graph"], args, device, None)
    assert resets == []
    bench.run_ours_or_reference(bench.SETTINGS["ours_bf16_weights_step_graph_cdt"], args, device, None)
    assert resets == [1]


def test_the_compiled_adamw_rows_wrap_the_optimizer_only_when_compiling(load_benchmark, monkeypatch):
    import torch

    import mmscale.train.compiled_update as compiled_update

    bench = load_benchmark("train_step")
    built = []
    original = compiled_update.CompiledAdamW.__init__

    def recording(self, optimizer):
        built.append(optimizer)
        original(self, optimizer)
    monkeypatch.setattr(compiled_update.CompiledAdamW, "__init__", recording)
    monkeypatch.setattr(bench, "measure", lambda row, *a, **k: row)
    args = bench.parse_args(["--smoke"])
    device = torch.device("cpu")
    row = bench.run_ours_or_reference(bench.SETTINGS["ours_bf16_weights_step_graph_compiled_adamw"], args, device, None)
    assert built == [] and row.status.startswith("ok (")  # compile off, step not captured
    args.no_compile = False
    bench.run_ours_or_reference(bench.SETTINGS["ours_bf16_weights_step_graph_compiled_adamw"], args, device, None)
    assert len(built) == 1 and hasattr(built[0], "masters")  # the bf16 weights' fp32 copies, wrapped
    assert all(isinstance(group["lr"], torch.Tensor) for group in built[0].param_groups)


def test_optimizer_update_benchmark_times_the_eager_update_on_cpu(tmp_path, load_benchmark):
    """The compiled variants compile for a minute on CPU; their math is tests/train/test_compiled_update.py's."""
    bench = load_benchmark("optimizer_update")
    result = bench.main(["--preset", "tiny", "--device", "cpu", "--variants", "eager", "--iters", "1",
                         "--rounds", "1", "--out", str(tmp_path)])
    (row,) = result["rows"]
    assert row["variant"] == "eager" and row["ms"] > 0
    assert row["counted_gb"] == pytest.approx(52 * result["params"] / 1e9, abs=0.01)
    assert (tmp_path / "optimizer_update.json").is_file()


def test_optimizer_update_benchmark_times_the_flat_update_against_the_eager_on_cpu(tmp_path, load_benchmark):
    """On CPU the flat pass runs uncompiled; both rows in this process, the ratio printed."""
    bench = load_benchmark("optimizer_update")
    result = bench.main(["--preset", "tiny", "--device", "cpu", "--variants", "eager,flat", "--iters", "1",
                         "--rounds", "1", "--in-process", "--out", str(tmp_path)])
    rows = {row["variant"]: row for row in result["rows"]}
    assert rows["flat"]["ms"] > 0
    assert rows["flat"]["counted_gb"] == pytest.approx(34 * result["params"] / 1e9, abs=0.01)
    assert result["ratios"]["flat_speedup_over_eager"] == pytest.approx(rows["eager"]["ms"] / rows["flat"]["ms"], rel=1e-2)


def test_train_step_flat_update_row_runs_and_updates_through_the_flat_buffers(tmp_path, load_benchmark, monkeypatch):
    import mmscale.train.flat_update as flat_update

    bench = load_benchmark("train_step")
    built = []
    original = flat_update.FlatMasterAdamW.clip_and_step

    def recording(self, max_norm):
        built.append(max_norm)
        return original(self, max_norm)
    monkeypatch.setattr(flat_update.FlatMasterAdamW, "clip_and_step", recording)
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "0", "--out", str(tmp_path),
                         "--variants", "ours_bf16_weights_step_graph_erf_poly_flat"])
    (row,) = result["rows"]
    assert row["status"].startswith("ok") and row["samples_per_s"] > 0
    assert built and set(built) == {1.0}  # every step went through the flat update, clipped to 1


def test_optimizer_update_benchmark_runs_each_variant_in_its_own_process(tmp_path, load_benchmark, monkeypatch):
    """Two variants: two child processes of the script, their rows merged and the ratio printed."""
    import subprocess

    bench = load_benchmark("optimizer_update")
    children = []

    def child(cmd, check):
        children.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        name = cmd[cmd.index("--variants") + 1]
        ms = {"eager": 4.0, "compiled": 2.0}[name]
        (out / "optimizer_update.json").write_text(json.dumps(
            {"params": 1000, "rows": [{"variant": name, "ms": ms, "counted_gb": 0.1, "tb_per_s": 0.0, "setup_s": 0.0}]}))
    monkeypatch.setattr(subprocess, "run", child)
    result = bench.main(["--preset", "tiny", "--device", "cpu", "--variants", "eager,compiled", "--out", str(tmp_path)])
    assert [c[c.index("--variants") + 1] for c in children] == ["eager", "compiled"]
    assert all("--in-process" not in c for c in children)
    assert result["process_per_variant"] is True and result["params"] == 1000
    assert result["ratios"] == {"compiled_speedup_over_eager": 2.0}


def test_every_rows_inductor_settings_exist_in_this_torch(load_benchmark):
    """A misspelt Inductor setting would fail only on the GPU, after the rows before it ran."""
    import torch._inductor.config as inductor_config

    bench = load_benchmark("train_step")
    for name, settings in bench.SETTINGS.items():
        with inductor_config.patch(dict(settings.inductor)):  # raises AttributeError on an unknown key
            for key, value in settings.inductor:
                node = inductor_config
                for part in key.split("."):
                    node = getattr(node, part)
                assert node == value, name
