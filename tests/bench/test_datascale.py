"""Data-scale analysis on constructed rows, and the measuring loop with a fake trainer."""

from __future__ import annotations

import numpy as np
import pytest

from mmscale.bench import datascale as ds

KIB = 1024


def row(n, wall, rss, gpu=None, repeat=0):
    return ds.DatascaleRow(n_samples=n, repeat=repeat, epochs=1, steps=n // 32, samples_seen=n, wall_s=wall + 5,
                           train_wall_s=wall, samples_per_s=n / wall, peak_rss_gib=rss,
                           peak_rss_delta_gib=rss - 1.0, peak_gpu_gib=gpu)


def test_linear_time_and_flat_memory_pass():
    rows = [row(n, 0.001 * n + 20, 2.0) for n in (10_000, 50_000, 100_000)]
    a = ds.analyze(rows)
    assert a["time_fit"]["slope"] == pytest.approx(0.001)
    assert a["time_fit"]["intercept"] == pytest.approx(20)
    assert a["time_fit"]["r2"] == pytest.approx(1.0)
    assert a["seconds_per_1k_samples"] == pytest.approx(1.0)
    assert a["superlinear_time"] is False
    assert a["memory_grows_with_n"] is False


def test_quadratic_time_is_flagged_superlinear():
    rows = [row(n, 1e-8 * n * n + 1, 2.0) for n in (10_000, 50_000, 100_000)]
    a = ds.analyze(rows)
    assert a["superlinear_time"] is True and a["time_exponent"] > 1.5


def test_memory_growing_with_n_is_flagged_host_or_gpu():
    host = [row(n, n / 1000, 1.0 + n / 50_000) for n in (10_000, 50_000, 100_000)]
    assert ds.analyze(host)["memory_grows_with_n"] is True
    gpu = [row(n, n / 1000, 2.0, gpu=10 + n / 20_000) for n in (10_000, 50_000, 100_000)]
    assert ds.analyze(gpu)["memory_grows_with_n"] is True
    small = [row(n, n / 1000, 2.0 + n / 1e9) for n in (10_000, 50_000, 100_000)]  # a few KiB: noise
    assert ds.analyze(small)["memory_grows_with_n"] is False


def test_repeats_use_the_median_per_size():
    rows = [row(1000, 10, 2.0, repeat=0), row(1000, 12, 2.0, repeat=1), row(1000, 50, 2.0, repeat=2),
            row(2000, 20, 2.0, repeat=0), row(2000, 22, 2.0, repeat=1), row(2000, 21, 2.0, repeat=2)]
    a = ds.analyze(rows)
    assert a["time_fit"]["slope"] == pytest.approx(9 / 1000)  # medians 12 and 21, the outlier ignored


def test_single_size_gives_no_fit():
    assert ds.analyze([row(1000, 1, 1)])["time_fit"] is None


def test_run_datascale_measures_time_and_host_memory_of_each_run():
    """The fake trainer "preloads" a block per sample, sized so that the largest run holds half
    of what the process already holds: the relative growth flag must then fire whatever earlier
    tests left in this process (a fixed 156 MiB block failed it once, which means the worker
    held more than 1.5 GB)."""
    import psutil

    held = []
    per_sample = max(100 * KIB, psutil.Process().memory_info().rss // 2 // 1600)

    def preloading_runner(n_samples: int, epochs: int) -> ds.RunMeasure:
        block = np.ones(n_samples * per_sample, dtype=np.uint8)
        held.append(block.sum())
        return ds.RunMeasure(steps=n_samples // 10, samples_seen=n_samples * epochs)

    rows = ds.run_datascale(preloading_runner, [1600, 100, 400], epochs=2, repeats=1)
    assert [r.n_samples for r in rows] == [100, 400, 1600]
    assert all(r.samples_seen == 2 * r.n_samples and r.train_wall_s > 0 for r in rows)
    deltas = [r.peak_rss_delta_gib * 2**30 for r in rows]
    assert deltas[-1] >= 0.9 * 1600 * per_sample
    assert deltas[0] < deltas[-1] / 4
    assert ds.analyze(rows)["memory_grows_with_n"] is True
