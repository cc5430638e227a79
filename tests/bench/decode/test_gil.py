"""The GIL probe tells a call that holds the GIL from one that releases it, and measures every figure."""

from __future__ import annotations

import time

import pytest
import torch

from mmscale.bench.decode.gil import bench_decode_gil, format_gil, python_progress


@pytest.mark.whole_machine  # its spinning thread must hold a core of its own to contend for the GIL
def test_decode_gil_probe_tells_a_call_that_holds_the_gil_from_one_that_releases_it():
    def holds(seconds=0.3):  # pure Python: the spinning thread only gets the GIL's time slices
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    # best of three, alternating: the least disturbed window of each, so that other load on a
    # shared 2-core machine (which slows both) cannot close the gap (one run: 0.751 with singles)
    releases, held, slept = [], [], []
    for _ in range(3):
        rate, slept_s = python_progress(0.0, alongside=lambda: time.sleep(0.3))
        releases.append(rate)
        slept.append(slept_s)
        held.append(python_progress(0.0, alongside=holds)[0])
    assert max(held) < 0.8 * max(releases)  # about half when the GIL is shared, all when it is not
    assert all(0.3 <= s < 1.0 for s in slept)  # the time of the call beside the spinning thread is its own
    threads = torch.get_num_threads()
    result = bench_decode_gil(torch.device("cpu"), n=8, batch=256, width=64, height=48)
    assert torch.get_num_threads() == threads  # one thread while it measured, then as before
    assert result["images"] == 8 and result["one_thread_img_per_s"] > 0 and result["python_progress_ratio"] > 0
    assert result["decode_beside_python_ratio"] == pytest.approx(
        result["decode_beside_python_img_per_s"] / result["one_thread_img_per_s"])
    # the calls' timings alone and beside the spinning thread are the benchmark's figures (a loaded
    # host reorders them); the test checks that each was measured
    calls = result["boxed_list_op"]["256"]
    assert all(calls[way][when] > 0 for way in ("torch_ops", "binding") for when in ("alone_ms", "beside_ms"))
    assert "GIL takes per call" in format_gil(result).splitlines()[-1]
