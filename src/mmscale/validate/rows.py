"""A validate run's sections as rows of the one result schema (``mmscale.result_rows``): written as
``rows.jsonl`` beside results.json, and by ``mmscale bench datascale|batchsweep|scaling``, which run
one section each. The benchmark of a row is its section's name."""

from __future__ import annotations

from mmscale.bench.rows import data_rows, load_rows, pipeline_variant_rows
from mmscale.result_rows import metric, row, rows_from_records


def datascale_rows(section: dict, config: dict) -> list[dict]:
    """One row per size and repeat (``n=1000``): compare takes the median of the repeats."""
    units = {"train_wall_s": "s", "wall_s": "s", "samples_per_s": "samples/s", "peak_rss_gib": "GiB",
             "peak_gpu_gib": "GiB", "data_wait_pct": "%"}
    return rows_from_records("datascale", section["rows"], lambda r: f"n={r['n_samples']}", units, config,
                             ("n_samples", "repeat", "epochs", "steps"))


def batchsweep_rows(section: dict, config: dict) -> list[dict]:
    """Each batch that ran (``bf16 batch=64``), then each variant's limits: the largest batch that fitted,
    the one the memory fit predicted, the throughput knee."""
    ok = [r for r in section["rows"] if r["status"] == "ok"]
    out = rows_from_records("batchsweep", ok, lambda r: f"{r['variant']} batch={r['batch_size']}",
                            {"step_ms": "ms", "samples_per_s": "samples/s", "peak_bytes": "bytes"}, config,
                            ("batch_size", "phase", "memory_kind"))
    analysis = next((t["rows"] for t in section.get("tables", []) if t["title"] == "Per-variant analysis"), [])
    units = {"found_max_batch": "samples", "predicted_max_batch": "samples", "knee_batch": "samples",
             "bytes_per_sample": "bytes", "max_samples_per_s": "samples/s"}
    return out + rows_from_records("batchsweep", analysis, "variant", units, config)


def scaling_rows(section: dict, config: dict) -> list[dict]:
    units = {"step_ms": "ms", "samples_per_s": "samples/s", "per_rank_samples_per_s": "samples/s",
             "efficiency": "fraction", "comm_share": "fraction", "comm_ms_at_link": "ms", "issue_ms": "ms",
             "peak_mem_gib": "GiB"}
    return rows_from_records("scaling", section["rows"], lambda r: f"{r['strategy']} {r['regime']} x{r['world_size']}",
                             units, config, ("strategy", "regime", "world_size", "per_rank_batch", "global_batch",
                                             "device"))


def pipeline_section_rows(section: dict, config: dict) -> list[dict]:
    """The main run's headline figures (the section's summary) and the what-if variants."""
    summary = section.get("summary") or {}
    main = {"step_ms": metric(summary.get("step_ms"), "ms"),
            "samples_per_s": metric(summary.get("samples_per_s"), "samples/s"),
            "unattributed_frac": metric(summary.get("unattributed_frac"), "fraction"),
            "gpu_idle_frac": metric(summary.get("gpu_idle_frac"), "fraction"),
            "synthetic_samples_per_s": metric(summary.get("synthetic_samples_per_s"), "samples/s")}
    config = {**config, **{k: summary.get(k) for k in ("device", "batch_size", "decode")}}
    return [row("pipeline", "main", main, config)] + pipeline_variant_rows(section["rows"], config)


SECTION_ROWS = {
    "data": lambda section, config: data_rows(
        section, {**config, "image_size": (section.get("summary") or {}).get("image_size")}),
    "pipeline": pipeline_section_rows,
    "datascale": datascale_rows,
    "batchsweep": batchsweep_rows,
    "load": lambda section, config: load_rows(
        {"rows": section["rows"], "search": (section.get("summary") or {}).get("search")}, config),
    "scaling": scaling_rows,
}


def section_rows(name: str, section: dict, config: dict | None = None) -> list[dict]:
    """The rows of one section (none when it did not run or failed)."""
    if section.get("status") != "ok" or name not in SECTION_ROWS:
        return []
    return SECTION_ROWS[name](section, config or {})


def validate_rows(results: dict) -> list[dict]:
    """Every section's rows; each row's config names the preset."""
    config = {"preset": results.get("preset")}
    return [r for name, section in results["sections"].items() for r in section_rows(name, section, config)]
