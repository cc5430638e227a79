"""The data benchmark on a tiny dataset: every variant runs and the rows are consistent (CPU smoke)."""

import json

from mmscale.bench.data_loading import DataLoadingRow, bench_data_loading, speedup
from mmscale.cli import main
from mmscale.data.synth import synthesize


def test_speedup_is_a_ratio_of_rows():
    rows = [DataLoadingRow("reference_dataloader", 2, 8, 100, 1.0, 50.0),
            DataLoadingRow("ours_cpu", 2, 8, 100, 1.0, 90.0)]
    assert speedup(rows) == 1.8 and speedup(rows[:1]) == 0.0


def test_bench_rows(tmp_path):
    synthesize(24, tmp_path, val_frac=0.0, workers=1, progress=False)
    rows = bench_data_loading(str(tmp_path), n_images=24, workers=1, batch_size=4)
    by = {r.variant: r for r in rows}
    assert set(by) == {"reference_loop", "reference_dataloader", "ours_cpu", "decode_only", "decode_only_full"}
    assert by["reference_dataloader"].vs_reference_dataloader == 1.0
    assert by["ours_cpu"].n_images == 24 and by["decode_only"].n_images == 24  # the whole second pass
    assert all(r.img_per_s > 0 for r in rows)
    assert json.dumps([r.as_dict() for r in rows])


def test_cli(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "data", "--n", "16", "--workers", "1", "--batch-size", "4", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["workers"] == 1 and len(result["rows"]) == 5
    assert json.loads((out / "data_loading.json").read_text())["rows"] == result["rows"]
    assert main(["bench", "data", "--data", str(out / "synth"), "--n", "16", "--workers", "1", "--batch-size", "4",
                 "--out", str(tmp_path / "table")]) == 0
    assert "ours_cpu" in capsys.readouterr().out


def test_repeats_report_the_median_run(tmp_path):
    synthesize(12, tmp_path, val_frac=0.0, workers=1, progress=False)
    rows = bench_data_loading(str(tmp_path), n_images=12, workers=1, batch_size=4,
                              variants=("ours_cpu", "decode_only"), repeats=3)
    assert [r.variant for r in rows] == ["ours_cpu", "decode_only"] and all(r.repeats == 3 for r in rows)
    assert rows[0].vs_reference_dataloader == 0.0  # no baseline row in this run


def test_the_run_has_a_hardware_monitor_beside_it(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "data", "--n", "16", "--workers", "1", "--batch-size", "4", "--out", str(out),
                 "--monitor-interval", "0.05"]) == 0
    result = json.loads((out / "data_loading.json").read_text())
    assert result["monitor"]["samples"] >= 2 and "cpu_pct" in result["monitor"]["fields"]
    rows = [json.loads(line) for line in (out / "data_loading.monitor.jsonl").read_text().splitlines()]
    assert len(rows) == result["monitor"]["samples"] and all("sys_cpu_pct" in r for r in rows)
    assert f"hardware: {len(rows)} samples" in capsys.readouterr().out


def test_monitor_off_and_a_negative_interval(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "data", "--n", "16", "--workers", "1", "--batch-size", "4", "--out", str(out),
                 "--monitor-interval", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["monitor"] == {}
    assert not (out / "data_loading.monitor.jsonl").exists()
    assert main(["bench", "data", "--n", "16", "--batch-size", "4", "--out", str(out), "--monitor-interval", "-1"]) != 0
    assert "--monitor-interval" in capsys.readouterr().err
