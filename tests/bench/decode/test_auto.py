"""CPU smoke runs of ``mmscale bench decode-auto``: three runs, auto probes (gpu's code on the CPU
device), the table ends with the ratios; the synthetic partners and the per-epoch loaders; and the
steady-state helpers compute what they say."""

import json

import pytest
import torch

from mmscale.bench.decode.partners import PARTNERS, PER_EPOCH_PATHS, RepeatedBatch, per_epoch_paths
from mmscale.bench.decode.steady import monitor_overhead, ratios, steady, steady_hardware
from mmscale.cli import main
from mmscale.data.batch import Batch
from mmscale.data.config import DataConfig
from mmscale.data.skips import SkipCounter, SkipReason
from mmscale.train import decode_probe
from tests.data.conftest import FakeTokenizer
from tests.train.conftest import write_dataset


def test_decode_auto_benchmark_cpu_smoke(tmp_path, capsys):
    code = main(["bench", "decode-auto", "--preset", "tiny", "--device", "cpu", "--steps", "24", "--synth", "96",
                 "--cpu-stand-in", "--out", str(tmp_path), "data.num_workers=0", "data.image_size=32",
                 "model.image_size=32", "model.image_patch_size=16", "model.image_depth=1", "train.batch_size=4",
                 "--probe-steps", "1,3"])
    assert code == 0
    assert (decode_probe.PROBE_WARMUP_STEPS, decode_probe.PROBE_TIMED_STEPS) == (None, None)  # restored after the run
    result = json.loads((tmp_path / "decode_auto.json").read_text())
    runs = result["runs"]
    assert [runs[p]["kept"] for p in ("cpu", "gpu")] == ["cpu", "gpu"] and runs["auto"]["kept"] in ("cpu", "gpu")
    assert all(runs[p]["steps"] == 24 and runs[p]["samples_per_s"] > 0 for p in runs)
    probe = runs["auto"]["probe"]
    assert probe["plan"] == ["gpu", "cpu"] and set(probe["step_ms"]) == {"gpu", "cpu"}
    assert result["summary"]["steady_from_step"] == 10  # 2 x (1 + 3 + 1) probe steps, rounded to log_every
    assert not (tmp_path / "auto" / "checkpoint.pt").exists()
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-2].startswith("auto / faster fixed, steady state") and lines[-1].startswith("wall")


def test_ratios_and_steady_windows():
    rows = [{"step": 10, "time/step_ms": 100.0, "time/data_wait_ms": 10.0},
            {"step": 20, "time/step_ms": 50.0, "time/data_wait_ms": 0.0},
            {"step": 25, "time/step_ms": 100.0, "time/data_wait_ms": 50.0}]
    got = steady(rows, batch=4, after_step=10)  # windows (10, 20] and (20, 25]
    assert got["steady_steps"] == 15
    assert got["steady_samples_per_s"] == pytest.approx(1e3 * 15 * 4 / (10 * 50 + 5 * 100))
    assert got["steady_data_wait_pct"] == pytest.approx(100 * 250 / 1000)
    run = {"cpu": {"path": "cpu", "samples_per_s": 90.0, "steady_samples_per_s": 100.0},
           "gpu": {"path": "gpu", "samples_per_s": 95.0, "steady_samples_per_s": 110.0},
           "auto": {"path": "auto", "kept": "cpu", "samples_per_s": 85.0, "steady_samples_per_s": 99.0}}
    summary = ratios(run)
    assert summary["faster_fixed_path"] == "gpu" and summary["fixed_gap_frac"] == pytest.approx(0.1)
    assert not summary["auto_kept_the_faster"]
    assert summary["auto_vs_faster_fixed_steady_samples_per_s"] == pytest.approx(0.9)
    assert summary["auto_vs_fixed_same_path_steady"] == pytest.approx(0.99)
    run["gpu"]["steady_samples_per_s"] = 101.0  # a 1% gap: either choice is right
    assert ratios(run)["auto_kept_the_faster"]


# 20 steps of the tiny model at 32 px on 64 synthesized samples, on the CPU
SMALL_RUN = ["--preset", "tiny", "--device", "cpu", "--steps", "20", "--synth", "64", "data.num_workers=0",
             "data.image_size=32", "model.image_size=32", "model.image_patch_size=16", "model.image_depth=1",
             "train.batch_size=4"]


def test_synthetic_partner_runs_the_loop_on_one_device_batch(tmp_path, capsys):
    code = main(["bench", "decode-auto", "--paths", "cpu,synthetic,synthetic_bf16", "--out", str(tmp_path), *SMALL_RUN])
    assert code == 0
    result = json.loads((tmp_path / "decode_auto.json").read_text())
    runs = result["runs"]
    assert runs["synthetic"]["kept"] == "synthetic" and runs["synthetic"]["steps"] == 20
    assert runs["synthetic_bf16"]["skipped"] == "needs CUDA"
    # 20 steps of 4 samples from 64: the cpu run reads the set more than once, the partner one batch
    assert runs["cpu"]["steps"] == 20
    ratio = result["summary"]["files_vs_synthetic"]["cpu_vs_synthetic_steady"]
    assert ratio == pytest.approx(runs["cpu"]["steady_samples_per_s"] / runs["synthetic"]["steady_samples_per_s"])
    assert "from files / synthetic, steady: cpu" in capsys.readouterr().out


def test_an_unknown_path_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "decode-auto", "--paths", "cpu,gpu_fp8", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "unknown path 'gpu_fp8'" in capsys.readouterr().err


def test_repeated_batch_counts_its_skips_once():
    skips = SkipCounter()
    skips.add(SkipReason.corrupt_image, "a.jpg")

    class OneBatch:
        opened = sampler = None
        index_skips = SkipCounter()
        closed = False

        def __iter__(self):
            yield Batch(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.ones(2, 3, dtype=torch.long),
                        torch.ones(2, 3, dtype=torch.long), ["a", "b"], skips)

        def close(self):
            self.closed = True

    inner = OneBatch()
    repeated = RepeatedBatch(inner, torch.device("cpu"))
    stream = iter(repeated)
    batches = [next(stream) for _ in range(3)]
    assert [b.skips.skipped for b in batches] == [1, 0, 0]
    assert all(b.images is batches[1].images for b in batches[1:])
    repeated.close()
    assert inner.closed


def test_per_epoch_runs_build_their_path_iterated_once_per_epoch(tmp_path):
    cfg = DataConfig(path=str(write_dataset(tmp_path)), image_size=32, max_text_len=16, num_workers=0)
    for run, (_, path) in PER_EPOCH_PATHS.items():
        assert PARTNERS[run].startswith("synthetic")
        build = per_epoch_paths(path)[path]
        loader = build(cfg, 8, FakeTokenizer(), endless=True, decode="auto")  # what training asks for
        assert loader.epochs is None and loader.decode == path  # overridden: one pass per iteration
        assert len(list(loader)) == 6  # 48 samples: the pass ends


def test_monitor_off_partner_gives_the_monitor_overhead(tmp_path, capsys):
    code = main(["bench", "decode-auto", "--paths", "synthetic,synthetic_no_monitor", "--out", str(tmp_path),
                 *SMALL_RUN, "--monitor-interval-s", "0.05"])
    assert code == 0
    result = json.loads((tmp_path / "decode_auto.json").read_text())
    runs, summary = result["runs"], result["summary"]
    assert runs["synthetic"]["monitor"]["samples"] >= 1  # the run's own monitor summary is in its row
    assert runs["synthetic_no_monitor"]["monitor"] == {}  # the override reached the run: no sampler
    assert not (tmp_path / "synthetic_no_monitor" / "monitor.jsonl").exists()
    expected = 100 * (runs["synthetic_no_monitor"]["steady_samples_per_s"]
                      / runs["synthetic"]["steady_samples_per_s"] - 1)
    assert summary["monitor_overhead_pct"] == pytest.approx(expected)
    assert "monitor overhead, steady (on vs off)" in capsys.readouterr().out


def test_monitor_overhead_needs_both_runs():
    on = {"steady_samples_per_s": 100.0, "monitor": {"samples": 50, "achieved_hz": 5.0}}
    assert monitor_overhead({"synthetic": on}) == {}
    out = monitor_overhead({"synthetic": on, "synthetic_no_monitor": {"steady_samples_per_s": 101.0}})
    assert out["monitor_overhead_pct"] == pytest.approx(1.0) and out["monitor_achieved_hz"] == 5.0


def test_steady_hardware_reads_the_samples_after_the_steady_mark(tmp_path):
    lines = [{"t_s": 0.1, "main_thread_cpu_pct": 10.0, "main_thread_wait_pct": 90.0},  # compile: left out
             {"t_s": 0.2, "mark": "step=10"},
             {"t_s": 0.3, "main_thread_cpu_pct": 20.0, "main_thread_wait_pct": None},
             {"t_s": 0.4, "mark": "step=20"},
             {"t_s": 0.5, "main_thread_cpu_pct": 80.0, "main_thread_wait_pct": 2.0, "gpu0_sm_clock_mhz": 1980},
             {"t_s": 0.6, "main_thread_cpu_pct": 100.0, "main_thread_wait_pct": 4.0, "gpu0_sm_clock_mhz": 1960}]
    path = tmp_path / "monitor.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    got = steady_hardware(path, after_step=20)
    assert got == {"steady_main_thread_cpu_pct": 90.0, "steady_main_thread_wait_pct": 3.0,
                   "steady_gpu0_sm_clock_mhz": 1970.0}
    # the training loop's marks arrive after the sampler's rows: the same answer, read by time
    path.write_text("".join(json.dumps(line) + "\n" for line in sorted(lines, key=lambda line: "mark" in line)))
    assert steady_hardware(path, after_step=20) == got
    assert steady_hardware(path, after_step=30) == {}  # no such mark: nothing is steady
    assert steady_hardware(tmp_path / "none.jsonl", 20) == {}
