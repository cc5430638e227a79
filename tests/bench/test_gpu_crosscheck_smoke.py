"""The GPU cross-check benchmark on the CPU: every section runs, the FLOP check is real, and the
nvidia-smi parsing and matching are checked on constructed output."""

import json

import pytest



@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("gpu_crosscheck")


@pytest.fixture(scope="module")
def smoke(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("crosscheck")
    result = bench.main(["--smoke", "--phase-s", "0.3", "--out", str(out)])
    return result, out


def test_smoke_writes_every_section(smoke):
    result, out = smoke
    written = json.loads((out / "gpu_crosscheck.json").read_text())
    assert set(written["sections"]) == {"memory", "flops", "activity"}
    memory = written["sections"]["memory"]
    assert [r["batch"] for r in memory["rows"]] == [2, 4]
    for row in memory["rows"]:
        assert row["status"] == "ok"
        assert row["sweep_kind"] == "host_rss" and row["sweep_peak_mib"] >= 0
        assert row["smi_process_mib"] is None and row["smi_note"].startswith("not available")
        assert row["allocated_over_smi_process"] is None  # no figure is made up without nvidia-smi
    assert "CUDA context" in memory["expected_gap"]
    phases = written["sections"]["activity"]["phases"]
    assert [p["phase"] for p in phases] == ["launch_bound", "compute_bound"]
    for phase in phases:
        assert phase["steps"] >= 1 and phase["samples"] == phase["steps"] * phase["batch"]
        assert phase["energy_j_per_sample"] is None and phase["note"].startswith("not available")


def test_smoke_flop_count_agrees_with_flop_counter(smoke):
    flops = smoke[0]["sections"]["flops"]
    assert flops["status"] == "ok", flops
    # the analytic count reproduces FlopCounterMode once the fused attention's recompute is added,
    # and stays within a few % without it (model FLOPs)
    assert flops["analytic_with_recompute_over_counted"] == pytest.approx(1.0, abs=1e-3)
    assert flops["analytic_over_counted"] == pytest.approx(1.0, abs=0.03)
    assert flops["analytic_over_counted"] < 1.0
    assert flops["step_ms_events"] > 0 and flops["step_ms_train_step_bench"] > 0
    assert flops["mfu_counted"] is None and "CPU" in flops["mfu_note"]


def test_table_names_every_check(smoke, bench):
    text = bench.format_table(smoke[0])
    assert "analytic/counted" in text and "launch_bound" in text and "compute_bound" in text


def test_parse_and_pick_this_process(bench):
    apps = bench.parse_compute_apps("123, 4100, GPU-a\n456, 900, GPU-b\n789, [N/A], GPU-a\n")
    assert apps == [{"pid": 123, "used_mib": 4100.0, "gpu_uuid": "GPU-a"},
                    {"pid": 456, "used_mib": 900.0, "gpu_uuid": "GPU-b"}]
    assert bench.pick_process(apps, 123, "GPU-a") == (4100.0, "matched by pid")
    mib, note = bench.pick_process(apps, 999, "GPU-b")  # another pid namespace, one app on our GPU
    assert mib == 900.0 and "not listed" in note
    mib, note = bench.pick_process(apps + [{"pid": 5, "used_mib": 1.0, "gpu_uuid": "GPU-a"}], 999, "GPU-a")
    assert mib is None and note.startswith("not available")


def test_parse_and_pick_gpu(bench):
    gpus = bench.parse_gpus("GPU-a, 5000, 81559, 480\nGPU-b, 10, 81559, [N/A]\n")
    assert [g["reserved_mib"] for g in gpus] == [480.0, None]
    assert bench.pick_gpu(gpus, "GPU-b") == (gpus[1], "matched by uuid")
    assert bench.pick_gpu(gpus, "GPU-z")[0] is None
    assert bench.pick_gpu(gpus[:1], "GPU-z") == (gpus[0], "the only GPU listed")


def test_phase_means_skip_the_first_sample(bench):
    rows = [{"gpu0_util_pct": 0.0, "gpu0_sm_active_pct": None},
            {"gpu0_util_pct": 90.0, "gpu0_sm_active_pct": 20.0, "gpu0_power_w": 300.0},
            {"gpu0_util_pct": 100.0, "gpu0_sm_active_pct": None, "gpu0_power_w": 310.0}]
    means = bench.phase_means(rows, 0)
    assert means["nvml_util_pct"] == 95.0
    assert means["gpm_sm_active_pct"] == 20.0
    assert means["power_w"] == 305.0
    assert means["gpm_tensor_active_pct"] is None


def test_parse_phases(bench):
    assert bench.parse_phases("a=tiny:8, b=base:128") == [("a", "tiny", 8), ("b", "base", 128)]
    for bad in ("a=tiny", "=tiny:8", "a=tiny:0", "a=tiny:x", ""):
        with pytest.raises(ValueError):
            bench.parse_phases(bad)


def test_bad_arguments_name_the_option(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--memory-batches", "32,abc"])
    assert "--memory-batches" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--mfu-batch", "0"])
    assert "--mfu-batch" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--phases", "x=tiny"])
    assert "--phases" in capsys.readouterr().err
