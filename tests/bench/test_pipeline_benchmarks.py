"""CPU smoke runs of the two GPU benchmark scripts (tiny sizes): they run end to end and write JSON."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_decode_script_on_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gpu_decode.py", "--device", "cpu", "--n", "24", "--batch-size", "4",
                                      "--workers", "1", "--passes", "2", "--width", "96", "--height", "64",
                                      "--image-size", "32", "--out", str(tmp_path)])
    runpy.run_path(str(ROOT / "benchmarks" / "gpu_decode.py"), run_name="__main__")
    result = json.loads((tmp_path / "gpu_decode.json").read_text())
    rows = {r["pipeline"]: r for r in result["rows"]}
    assert rows["reference_dataloader"]["img_per_s"] > 0 and rows["ours_cpu_decode"]["img_per_s"] > 0
    assert rows["ours_cpu_decode_per_epoch"]["img_per_s"] > 0 and "cpu_decode" in result["endless_vs_per_epoch"]
    assert "not CUDA" in rows["ours_gpu_decode"]["note"] and "not CUDA" in rows["ours_gpu_decode_switch0.5ms"]["note"]
    assert "vs reference" in capsys.readouterr().out


def test_threaded_ceiling_visits_each_chunk_once_per_round_across_threads():
    import threading

    import torch

    module = runpy.run_path(str(ROOT / "benchmarks" / "gpu_decode.py"))
    seen, lock = [], threading.Lock()

    def fn(chunk):
        with lock:
            seen.append((chunk[0], threading.current_thread().name))

    chunks = [[k] * 4 for k in range(3)]  # 3 chunks of 4 "images"
    row = module["time_threads"]("t2", fn, chunks, 2, 20, torch.device("cpu"))
    # warm-up: one chunk per thread; then ceil(20 / 4) = 5 chunks split over the two threads
    timed = seen[2:]
    assert row.images == 20 and sorted(c for c, _ in timed) == [0, 0, 1, 1, 2]
    assert len({tid for _, tid in timed}) == 2 and row.img_per_s > 0 and "2 thread(s)" in row.note


def test_pipeline_script_on_cpu(tmp_path, capsys):
    module = runpy.run_path(str(ROOT / "benchmarks" / "pipeline.py"))
    code = module["main"](["--preset", "tiny", "--device", "cpu", "--steps", "1", "--batch-size", "4",
                           "--only", "workers", "--out", str(tmp_path),
                           "data.image_size=32", "model.image_size=32", "model.image_depth=1",
                           "model.image_patch_size=16", "data.num_workers=1"])
    assert code == 0
    checks = json.loads((tmp_path / "pipeline_checks.json").read_text())["checks"]
    assert checks[0]["met"] is True  # stages add up to the step
    assert "target" in capsys.readouterr().out


@pytest.mark.whole_machine  # its spinning thread must hold a core of its own to contend for the GIL
def test_decode_gil_probe_tells_a_call_that_holds_the_gil_from_one_that_releases_it(tmp_path):
    import time

    module = runpy.run_path(str(ROOT / "benchmarks" / "decode_gil.py"))
    progress = module["python_progress"]

    def holds(seconds=0.3):  # pure Python: the spinning thread only gets the GIL's time slices
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    # best of three, alternating: the least disturbed window of each, so that other load on a
    # shared 2-core machine (which slows both) cannot close the gap (one run: 0.751 with singles)
    releases, held, slept = [], [], []
    for _ in range(3):
        rate, slept_s = progress(0.0, alongside=lambda: time.sleep(0.3))
        releases.append(rate)
        slept.append(slept_s)
        held.append(progress(0.0, alongside=holds)[0])
    assert max(held) < 0.8 * max(releases)  # about half when the GIL is shared, all when it is not
    assert all(0.3 <= s < 1.0 for s in slept)  # the time of the call beside the spinning thread is its own
    assert module["main"](["--device", "cpu", "--n", "8", "--width", "64", "--height", "48", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "decode_gil.json").read_text())
    assert result["images"] == 8 and result["one_thread_img_per_s"] > 0 and result["python_progress_ratio"] > 0
    assert result["decode_beside_python_ratio"] == pytest.approx(
        result["decode_beside_python_img_per_s"] / result["one_thread_img_per_s"])
    # the calls' timings alone and beside the spinning thread are the benchmark's figures (a loaded
    # host reorders them); the test checks that each was measured
    calls = result["boxed_list_op"]["256"]
    assert all(calls[way][when] > 0 for way in ("torch_ops", "binding") for when in ("alone_ms", "beside_ms"))


def test_gpu_decode_script_gpu_rows_run_with_cpu_stand_ins(tmp_path, monkeypatch):
    """The rows that need CUDA, run on CPU (``--cpu-stand-in``): the batch decoder's CPU build stands in
    for nvjpeg, so the plumbing of each row (and ``--rows``) is exercised before a GPU run depends on it."""
    names = ["ours_gpu_decode", "ours_gpu_decode_1thread", "ours_raw_only", "gpu_decode_resize",
             "gpu_decode_resize_t2"]
    monkeypatch.setattr(sys, "argv", ["gpu_decode.py", "--device", "cpu", "--n", "24", "--batch-size", "4",
                                      "--workers", "1", "--passes", "2", "--width", "96", "--height", "64",
                                      "--image-size", "32", "--out", str(tmp_path), "--rows", ",".join(names),
                                      "--cpu-stand-in"])
    runpy.run_path(str(ROOT / "benchmarks" / "gpu_decode.py"), run_name="__main__")
    result = json.loads((tmp_path / "gpu_decode.json").read_text())
    rows = {r["pipeline"]: r for r in result["rows"]}
    assert list(rows) == ["reference_dataloader", *names]  # the reference always, then what was asked
    assert all(rows[name]["img_per_s"] > 0 for name in names), {n: rows[n]["note"] for n in names}
    assert "decoder" in rows["ours_gpu_decode_1thread"]["note"]  # the decoder's busy rate
