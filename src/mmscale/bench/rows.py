"""Each benchmark's result as rows of the one result schema (``mmscale.result_rows``).

A benchmark keeps its own JSON document (the docs cite its fields); the function here named after it
turns that document into rows, one per measured variant, with each metric's unit. A row's variant
names the point it measured (``bf16 batch=64``, ``batched c=16``), so that ``mmscale compare`` can
line up the same point across runs. ``ROWS_OF`` maps each ``mmscale bench`` command to its function;
every function takes ``(result, config)``, ``config`` being the command's own settings.
"""

from __future__ import annotations

from mmscale.bench.load.slo import parse_slo
from mmscale.result_rows import metric, row, rows_from_records


def ratio_row(benchmark: str, ratios: dict, config: dict, variant: str = "ratios") -> list[dict]:
    """The ratios a benchmark prints (ours over the baseline, ...) as one row, unit ``x``."""
    metrics = {k: metric(v, "x") for k, v in ratios.items() if isinstance(v, (int, float))}
    return [row(benchmark, variant, metrics, config)] if metrics else []


def checkpoint_rows(result: dict, config: dict) -> list[dict]:
    config = {**config, "device": result.get("device")}
    return (rows_from_records("checkpoint", result["rows"], "format",
                              {"save_s": "s", "load_s": "s", "bytes": "bytes"}, config)
            + ratio_row("checkpoint", result.get("ratios", {}), config))


def train_step_rows(result: dict, config: dict) -> list[dict]:
    config = {**config, "device": result.get("device")}
    ok = [r for r in result["rows"] if r.get("status") == "ok"]
    units = {"samples_per_s": "samples/s", "samples_per_s_pipelined": "samples/s", "step_ms": "ms",
             "mfu": "fraction", "gflops_per_sample": "GFLOP", "peak_gpu_gib": "GiB", "warmup_s": "s"}
    return (rows_from_records("train-step", ok, "variant", units, config, ("batch", "steps", "runtime"))
            + ratio_row("train-step", result.get("ratios", {}), config))


def data_rows(result: dict, config: dict, benchmark: str = "data") -> list[dict]:
    units = {"img_per_s": "img/s", "seconds": "s", "vs_reference_dataloader": "x"}
    return rows_from_records(benchmark, result["rows"], "variant", units, config,
                             ("workers", "batch_size", "n_images", "repeats", "normalize_device"))


def decode_auto_rows(result: dict, config: dict) -> list[dict]:
    runs = [r for r in result["runs"].values() if not r.get("skipped")]
    units = {"samples_per_s": "samples/s", "steady_samples_per_s": "samples/s", "data_wait_pct": "%",
             "steady_data_wait_pct": "%", "loop_s": "s", "run_s": "s"}
    summary = result.get("summary", {})
    ratios = {k: summary.get(k) for k in ("auto_vs_faster_fixed_samples_per_s", "auto_vs_fixed_same_path_steady",
                                          "auto_vs_faster_fixed_steady_samples_per_s")}
    ratios.update(summary.get("files_vs_synthetic", {}))
    out = rows_from_records("decode-auto", runs, "path", units, config, ("kept", "steps"))
    if isinstance(summary.get("monitor_overhead_pct"), (int, float)):
        out.append(row("decode-auto", "monitor_overhead", {"step_pct": metric(summary["monitor_overhead_pct"], "%")},
                       config))
    return out + ratio_row("decode-auto", ratios, config)


def gpu_decode_rows(result: dict, config: dict) -> list[dict]:
    config = {**config, "device": result.get("device_name"), "batch_size": result.get("batch_size"),
              "image_size": result.get("image_size")}
    ratios = {k: result.get(k) for k in ("gpu_vs_reference", "cpu_vs_reference", "threads_vs_inline")}
    ratios.update({f"endless_vs_per_epoch.{k}": v for k, v in result.get("endless_vs_per_epoch", {}).items()})
    return (rows_from_records("gpu-decode", result["rows"], "pipeline",
                              {"img_per_s": "img/s", "seconds": "s", "images": "images"}, config, ("workers",))
            + ratio_row("gpu-decode", ratios, config))


def index_memory_rows(result: dict, config: dict) -> list[dict]:
    units = {"pss_peak_mib": "MiB", "pss_start_mib": "MiB", "pss_end_mib": "MiB", "pss_growth_mib": "MiB",
             "index_mib": "MiB", "rss_sum_end_mib": "MiB", "build_s": "s", "iterate_s": "s"}
    return rows_from_records("index-memory", result["rows"], "layout", units, config, ("rows", "workers", "visited"))


LOAD_UNITS = {"throughput_per_s": "req/s", "goodput_per_s": "req/s", "achieved_rate_per_s": "req/s",
              "p50_ms": "ms", "p90_ms": "ms", "p99_ms": "ms", "max_ms": "ms", "requests": "requests",
              "energy_j_per_request": "J"}


def load_level(r: dict) -> str:
    """``batched c=16`` (closed loop) or ``batched 40 req/s`` (open loop)."""
    return f"{r['server']} c={r['concurrency']}" if r["mode"] == "closed" else f"{r['server']} {r['target_rate_per_s']:g} req/s"


def load_rows(result: dict, config: dict, benchmark: str = "load") -> list[dict]:
    """Every load level, then the best level within the SLO (``SERVER at SLO``): the capacity search's
    row when there was a search, else the level with the highest goodput among those that met it."""
    levels = result["rows"]
    out = rows_from_records(benchmark, levels, load_level, LOAD_UNITS, config,
                            ("mode", "concurrency", "target_rate_per_s", "slo", "processes"))
    search = result.get("search")
    if search is not None:
        best = search.get("row")
    else:
        met = [r for r in levels if _meets(r)]
        best = max(met, key=lambda r: r["goodput_per_s"], default=None)
    if best:
        units = {k: LOAD_UNITS[k] for k in ("throughput_per_s", "goodput_per_s", "p50_ms", "p99_ms")}
        out += rows_from_records(benchmark, [best], lambda r: f"{r['server']} at SLO", units, config,
                                 ("mode", "concurrency", "target_rate_per_s", "slo"))
    return out


def _meets(r: dict) -> bool:
    slo = parse_slo(r["slo"])
    value = r.get(f"p{slo.percentile:g}_ms")
    return (value is not None and value <= slo.bound_ms and not r["errors_by_status"]
            and r.get("offered_rate_reached") is not False)


def pipeline_rows(result: dict, config: dict) -> list[dict]:
    """The main run (step time, throughput, each stage), then each what-if variant and attention point."""
    stages, profile = result["stages"], result.get("profile") or {}
    config = {**config, "device": result["device"], "batch_size": result["batch_size"], "decode": result["decode"]}
    main = {"step_ms": metric(stages.get("step_ms"), "ms"), "samples_per_s": metric(stages.get("samples_per_s"), "samples/s"),
            "unattributed_frac": metric(stages.get("unattributed_frac"), "fraction"),
            "gpu_idle_frac": metric(profile.get("gpu_idle_frac"), "fraction"),
            "synthetic_samples_per_s": metric(result.get("synthetic_samples_per_s") or None, "samples/s"),
            "from_files_vs_synthetic": metric(result.get("from_files_vs_synthetic") or None, "x")}
    main.update({f"stage_ms.{k}": metric(v, "ms") for k, v in stages.get("stage_ms", {}).items()})
    return ([row("pipeline", "main", main, config)] + pipeline_variant_rows(result["variants"], config)
            + attention_rows(result.get("attention") or [], config))


def pipeline_variant_rows(variants: list[dict], config: dict) -> list[dict]:
    measured = [r for r in variants if not r.get("skipped")]
    units = {"samples_per_s": "samples/s", "step_ms": "ms", "input_frac": "fraction", "speedup": "x"}
    return rows_from_records("pipeline", measured, lambda r: f"{r['group']}/{r['variant']}", units, config, ("group",))


def attention_rows(points: list[dict], config: dict) -> list[dict]:
    measured = [r for r in points if r.get("ms") is not None]
    return rows_from_records("pipeline", measured, lambda r: f"attention/{r['impl']} L={r['text_len']} B={r['batch']}",
                             {"ms": "ms", "peak_mib": "MiB"}, config, ("text_len", "batch", "image_tokens", "dtype"))


def serve_rows(result: dict, config: dict) -> list[dict]:
    """The offline batch throughput, every server's load levels (LitServe's too), and the overload run."""
    offline = result.get("offline") or {}
    out = [row("serve", "offline", {"samples_per_s": metric(offline.get("samples_per_s"), "samples/s"),
                                    "step_ms": metric(offline.get("step_ms"), "ms")},
               {**config, "batch": offline.get("batch"), "dtype": offline.get("dtype")})] if offline else []
    servers = [result[k] for k in ("batched", "naive") if k in result] + list(result.get("peers", {}).values())
    for server in servers:
        out += load_rows({"rows": server["rows"], "search": server.get("search")}, config, "serve")
    if "overload" in result:
        overload = result["overload"]
        r = overload["row"]
        out.append(row("serve", f"{r['server']} overload", {
            "capacity_req_per_s": metric(overload.get("capacity_req_per_s"), "req/s"),
            "admitted_p99_ms": metric(r.get("p99_ms"), "ms"),
            "admitted_p99_over_unloaded": metric(overload.get("admitted_p99_over_unloaded"), "x"),
            "rejected_frac": metric(overload.get("rejected_frac"), "fraction")}, config))
    return out


ROWS_OF = {
    "checkpoint": checkpoint_rows, "train-step": train_step_rows, "data": data_rows,
    "decode-auto": decode_auto_rows, "gpu-decode": gpu_decode_rows, "index-memory": index_memory_rows,
    "load": load_rows, "pipeline": pipeline_rows, "serve": serve_rows,
}
