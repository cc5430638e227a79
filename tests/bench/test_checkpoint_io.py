"""``mmscale bench checkpoint``: both formats written, timed and loaded back, through the CLI."""

import json

from mmscale.cli import main


def test_bench_checkpoint_times_both_formats(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["bench", "checkpoint", "--preset", "tiny", "--repeats", "1", "--dir", str(tmp_path),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dcp_save_over_single_file" in printed
    result = json.loads((out / "checkpoint.json").read_text())
    rows = {row["format"]: row for row in result["rows"]}
    assert set(rows) == {"single_file", "dcp"}
    for row in rows.values():
        assert row["save_s"] > 0 and row["load_s"] > 0
        # both hold the model and AdamW's two moments: at least 3x the fp32 weights of tiny
        assert row["bytes"] > 3 * 4 * 1_000_000
    assert result["ratios"]["dcp_save_over_single_file"] == rows["dcp"]["save_s"] / rows["single_file"]["save_s"]
    assert not any(p.name.startswith("mmscale-ckpt-") for p in tmp_path.iterdir())  # cleaned up
