"""A benchmark's --out folder holds its result rows (rows.jsonl; rows.csv with --csv) beside its JSON."""

from __future__ import annotations

import csv
import json

from mmscale.cli import main
from mmscale.result_rows import read_rows


def test_bench_checkpoint_writes_rows_beside_its_json(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["bench", "checkpoint", "--preset", "tiny", "--repeats", "1", "--out", str(out), "--csv",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (out / "checkpoint.json").is_file()
    rows = read_rows(out)
    assert [r["variant"] for r in rows] == ["single_file", "dcp", "ratios"]
    assert {r["benchmark"] for r in rows} == {"checkpoint"}
    single = rows[0]
    assert single["metrics"]["save_s"]["unit"] == "s"
    assert single["metrics"]["save_s"]["value"] == printed["rows"][0]["save_s"]
    assert single["config"]["preset"] == "tiny" and single["config"]["repeats"] == 1
    assert single["environment"]["device"] in ("cpu", "cuda") and single["environment"]["cores"] >= 1
    with open(out / "rows.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [t["variant"] for t in table] == ["single_file", "dcp", "ratios"]
    assert float(table[1]["metrics.load_s [s]"]) == printed["rows"][1]["load_s"]
    assert float(table[2]["metrics.dcp_save_over_single_file [x]"]) > 0


def test_csv_without_a_run_folder_is_refused_before_anything_runs(capsys):
    assert main(["bench", "checkpoint", "--preset", "tiny", "--csv"]) == 2
    assert "argument --csv: needs --out" in capsys.readouterr().err
