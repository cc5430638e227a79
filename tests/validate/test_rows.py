"""A validate run's sections as result rows, on a constructed results document."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mmscale.bench.rows import load_rows
from mmscale.validate.rows import validate_rows

_spec = importlib.util.spec_from_file_location(
    "report_helpers", Path(__file__).parents[1] / "report" / "report_helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


def test_every_section_that_ran_gives_rows_named_by_what_they_measured():
    rows = validate_rows(helpers.full_results())
    by = {(r["benchmark"], r["variant"]): r for r in rows}
    assert {r["benchmark"] for r in rows} == {"pipeline", "datascale", "batchsweep", "scaling"}
    assert by[("pipeline", "main")]["metrics"]["samples_per_s"] == {"value": 640.0, "unit": "samples/s"}
    assert by[("pipeline", "input/gpu_decode")]["metrics"]["samples_per_s"]["value"] == 600.0
    assert by[("datascale", "n=50000")]["config"]["n_samples"] == 50_000
    assert by[("batchsweep", "fp32 batch=64")]["metrics"]["samples_per_s"]["value"] == 700.0
    assert by[("batchsweep", "bf16")]["metrics"]["found_max_batch"] == {"value": 256, "unit": "samples"}
    assert by[("scaling", "ddp weak x2")]["metrics"]["efficiency"]["value"] == 0.91
    assert all(r["config"]["preset"] == "gpu" for r in rows)


def load_level(concurrency: int, p99_ms: float, goodput: float, errors: dict | None = None) -> dict:
    return {"server": "batched", "mode": "closed", "concurrency": concurrency, "target_rate_per_s": 0.0,
            "throughput_per_s": goodput, "goodput_per_s": goodput, "p50_ms": p99_ms / 2, "p90_ms": p99_ms,
            "p99_ms": p99_ms, "errors_by_status": errors or {}, "offered_rate_reached": None, "slo": "p99<=100ms"}


def test_the_load_rows_end_with_the_best_level_within_the_slo():
    levels = [load_level(1, 10.0, 90.0), load_level(8, 60.0, 400.0), load_level(32, 150.0, 520.0),
              load_level(16, 90.0, 450.0, errors={"503": 3})]
    rows = load_rows({"rows": levels, "search": None}, {})
    assert [r["variant"] for r in rows] == ["batched c=1", "batched c=8", "batched c=32", "batched c=16",
                                            "batched at SLO"]
    at_slo = rows[-1]  # c=32 misses the bound and c=16 had errors: c=8 is the best that met it
    assert at_slo["config"]["concurrency"] == 8 and at_slo["metrics"]["goodput_per_s"] == {"value": 400.0, "unit": "req/s"}
