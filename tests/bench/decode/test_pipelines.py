"""CPU smoke runs of ``mmscale bench gpu-decode`` (tiny sizes): every row runs end to end and the JSON
is written; the GPU rows' plumbing runs on the CPU with ``--cpu-stand-in``."""

from __future__ import annotations

import json

from mmscale.cli import main

SMALL = ["--device", "cpu", "--n", "24", "--batch-size", "4", "--workers", "1", "--passes", "2", "--width", "96",
         "--height", "64", "--image-size", "32"]


def test_gpu_decode_on_cpu(tmp_path, capsys):
    assert main(["bench", "gpu-decode", *SMALL, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu_decode.json").read_text())
    rows = {r["pipeline"]: r for r in result["rows"]}
    assert rows["reference_dataloader"]["img_per_s"] > 0 and rows["ours_cpu_decode"]["img_per_s"] > 0
    assert rows["ours_cpu_decode_per_epoch"]["img_per_s"] > 0 and "cpu_decode" in result["endless_vs_per_epoch"]
    assert "not CUDA" in rows["ours_gpu_decode"]["note"] and "not CUDA" in rows["ours_gpu_decode_switch0.5ms"]["note"]
    assert "vs reference" in capsys.readouterr().out


def test_gpu_rows_run_with_cpu_stand_ins(tmp_path):
    """The rows that need CUDA, run on CPU (``--cpu-stand-in``): the batch decoder's CPU build stands in
    for nvjpeg, so the plumbing of each row (and ``--rows``) is exercised before a GPU run depends on it."""
    names = ["ours_gpu_decode", "ours_gpu_decode_1thread", "ours_raw_only", "gpu_decode_resize",
             "gpu_decode_resize_t2"]
    assert main(["bench", "gpu-decode", *SMALL, "--out", str(tmp_path), "--rows", ",".join(names),
                 "--cpu-stand-in"]) == 0
    result = json.loads((tmp_path / "gpu_decode.json").read_text())
    rows = {r["pipeline"]: r for r in result["rows"]}
    assert list(rows) == ["reference_dataloader", *names]  # the reference always, then what was asked
    assert all(rows[name]["img_per_s"] > 0 for name in names), {n: rows[n]["note"] for n in names}
    assert "decoder" in rows["ours_gpu_decode_1thread"]["note"]  # the decoder's busy rate


def test_a_batch_larger_than_the_set_is_refused(tmp_path, capsys):
    assert main(["bench", "gpu-decode", "--device", "cpu", "--n", "4", "--batch-size", "8", "--out", str(tmp_path)]) == 2
    assert "argument --batch-size: 8 is larger than --n 4" in capsys.readouterr().err
