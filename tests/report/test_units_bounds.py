"""Units on every number, and figures past a physical bound caught."""

from __future__ import annotations

import pytest

from mmscale.report.bounds import Bounds, check, find_flags
from mmscale.report.units import format_cell, format_quantity, format_range, unit_of


@pytest.mark.parametrize("column, value, text", [
    ("peak_bytes", 6900470784, "6.43 GiB"),
    ("unattributed_frac", 7.224e-06, "7.22×10⁻⁴%"),
    ("samples_per_s", 1548.8, "1.55k/s"),
    ("step_ms", 130.31, "130 ms"),
    ("share", 0.165, "16.5%"),
    ("prediction_error_rel", 0.0657, "+6.57%"),
    ("bytes_per_sample", 125771283.46, "120 MiB"),
    ("found_max_batch", 2432, "2,432"),
    ("r2", 0.99912, "0.999"),
    ("gpu0_power_w", 384.0027, "384 W"),
    ("spread", 0.3637, "36.4%"),
])
def test_cells_carry_their_columns_unit_and_no_raw_exponent(column, value, text):
    assert format_cell(column, value) == text
    assert "e-0" not in text and "e+" not in text


def test_quantities_and_ranges():
    assert format_quantity(10_000_000, "samples") == "10M samples"
    assert format_quantity(0.0003, "GiB") == "0.307 MiB"
    assert format_quantity(622, "s") == "10.4 min"
    assert format_range(801.2, 1850, "samples/s") == "801 – 1.85k samples/s"
    assert unit_of("variant") is None


BOUNDS = Bounds(cores=16, host_gib=125.9, device_gib=79.2, ceilings=(("data.rows", "img_per_s", 4000.0, "decode-only"),))


@pytest.mark.parametrize("quantity, value, row, flagged", [
    ("cpu_pct", 15107.4, {}, True),           # a 16-core host cannot give 151 cores
    ("cpu_pct", 1590.0, {}, False),
    ("main_thread_cpu_pct", 110.0, {}, True),  # one thread, one core
    ("main_thread_cpu_pct", 101.0, {}, False),  # within the sampling jitter allowed
    ("gpu0_util_pct", 100.0, {}, False),
    ("share", 1.2, {}, True),
    ("gpu0_mem_used_gib", 80.5, {}, True),
    ("rss_gib", 80.5, {}, False),              # host memory is 126 GiB
    ("peak_bytes", 90 * 2**30, {"memory_kind": "gpu_allocated"}, True),
    ("peak_bytes", 90 * 2**30, {"memory_kind": "host_rss"}, False),
    ("img_per_s", 4100.0, {"variant": "ours_cpu"}, False),  # within the 5% noise allowance
    ("img_per_s", 4500.0, {"variant": "ours_cpu"}, True),
    ("img_per_s", 4500.0, {"variant": "decode_only"}, False),
])
def test_check_flags_only_what_breaks_a_bound(quantity, value, row, flagged):
    assert bool(check(quantity, value, BOUNDS, row, "data.rows")) is flagged


def test_a_ceiling_bounds_only_the_figures_measured_beside_it():
    assert check("img_per_s", 4500.0, BOUNDS, {"variant": "ours_cpu"}, "data.rows")
    assert check("img_per_s", 4500.0, BOUNDS, {"variant": "ours_cpu"}, "pipeline.rows") is None


def test_find_flags_reads_stat_tables_by_their_field_column(helpers):
    doc = helpers.sample_results()
    doc["environment"]["cpu_count_usable"] = 16
    monitor = doc["sections"]["batchsweep"]
    monitor["tables"] = [{"title": "Field statistics", "rows": [{"field": "cpu_pct", "mean": 400.0, "max": 15107.4}]}]
    flags = find_flags(doc)
    assert [(f["quantity"], f["column"], f["value"]) for f in flags] == [("cpu_pct", "max", 15107.4)]


def test_csv_keeps_full_precision_and_writes_nan_as_empty():
    from mmscale.report.tables import csv_text

    text = csv_text([{"step_ms": 130.31151455, "p99_ms": float("nan"), "extra": {"a": 1}}, {"step_ms": None}])
    assert text.splitlines() == ["step_ms,p99_ms,extra", '130.31151455,,"{""a"": 1}"', ",,"]
