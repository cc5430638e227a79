"""The sections of ``mmscale validate``: each calls library benchmarks and returns a section dict.

A runner measures through ``mmscale.bench`` functions (never the CLI), turns rows into the
report's shape (rows, summary, verdicts, chart specs) and states its verdicts in words. A
section whose benchmark module is not part of this build says so instead of being empty.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
from pathlib import Path

import torch

from mmscale.bench import batchsweep as bs, thresholds
from mmscale.bench.datascale import WARMUP_STEPS, analyze, run_datascale, training_runner, warm_up
from mmscale.bench.scaling import run_scaling
from mmscale.data.loader import open_dataset
from mmscale.extras import install_hint, missing_modules
from mmscale.report.results import metric, new_section, verdict
from mmscale.validate import external
from mmscale.validate.charts import batchsweep_charts, datascale_charts, monitor_charts, scaling_charts

GIB = 2**30
TITLES = {
    "data": "Data loading",
    "pipeline": "Training step breakdown and bottleneck",
    "datascale": "Time and memory vs dataset size",
    "batchsweep": "Memory and throughput vs batch size",
    "load": "Serving latency vs concurrency",
    "scaling": "Multi-GPU scaling",
    "monitor": "Hardware timelines",
}


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def unavailable(name: str, module: str) -> dict:
    return new_section(TITLES[name], "unavailable",
                       f"not yet available: this build has no {module} module, so nothing was measured")


# -- datascale -----------------------------------------------------------------------------------

def dataset_size(job) -> int | None:
    """Training samples in the dataset (None for shard sets, whose length is unknown upfront)."""
    opened = open_dataset(dataclasses.replace(job.data, limit=None), "train")
    return len(opened.index) if opened.index is not None else None


def run_datascale_section(ctx) -> dict:
    settings = ctx.settings.datascale
    section = new_section(TITLES["datascale"])
    available = dataset_size(ctx.configs.job)
    sizes = sorted(settings.sizes)
    if available is not None and available < sizes[-1]:
        dropped = [n for n in sizes if n > available]
        sizes = [n for n in sizes if n <= available] or [available]
        section["verdicts"].append(verdict("info", f"the dataset has {available} training samples; sizes "
                                           f"{dropped} were replaced by what fits: {sizes}"))
    if len(sizes) < 2:
        section["verdicts"].append(verdict("warn", "fewer than two sizes: no fit is possible"))
    runner = training_runner(ctx.configs.job, ctx.device, progress=ctx.say)
    warm = None
    if runner.compiles:
        warm_n = min(sizes[0], WARMUP_STEPS * ctx.configs.job.train.batch_size)
        ctx.say(f"datascale: warm-up run at N={warm_n} (compile and capture, not fitted)")
        warm = warm_up(runner, warm_n, ctx.device)
    rows = run_datascale(runner, sizes, settings.epochs, settings.repeats, ctx.device,
                         on_row=lambda r: ctx.say(f"datascale: N={r.n_samples} took {r.wall_s:.1f} s"))
    analysis = analyze(rows)
    section["rows"] = [r.as_dict() for r in rows]
    section["summary"] = {k: v for k, v in analysis.items() if not isinstance(v, dict)}
    section["summary"]["epochs"] = settings.epochs
    section["summary"]["batch_size"] = ctx.configs.job.train.batch_size
    if warm is not None:
        section["summary"].update(warmup_n_samples=warm.n_samples, warmup_wall_s=warm.wall_s,
                                  warmup_startup_s=warm.startup_s)
        section["verdicts"].append(verdict(
            "info", f"compile and graph capture: {warm.startup_s or warm.train_wall_s:.0f} s once per process, paid "
                    f"in a warm-up run of {warm.steps} steps before the sizes and kept out of the time fit"))
    fit = analysis.get("time_fit")
    if fit:
        level = "pass" if fit["r2"] >= thresholds.DATASCALE_FIT_R2 and not analysis["superlinear_time"] else "warn"
        if fit["n_points"] < 3:
            level = "info"  # two sizes always fit a line: no evidence either way
        section["verdicts"].append(verdict(
            level, f"training time = {fit['slope'] * 1e3:.3g} s per 1k samples + {fit['intercept']:.3g} s "
                   f"(R² {fit['r2']:.3f}); growth exponent {analysis['time_exponent']:.2f}"
                   + (" — super-linear: cost per sample rises with N" if analysis["superlinear_time"] else "")))
        if analysis["memory_grows_with_n"]:
            section["verdicts"].append(verdict(
                "warn", f"peak memory grows with N (+{analysis['rss_growth_gib']:.3f} GiB host RSS over the range): "
                        "something holds per-sample state instead of streaming"))
        else:
            section["verdicts"].append(verdict(
                "pass", f"peak memory is flat in N (host RSS {analysis['rss_growth_gib']:+.3f} GiB over the range)"))
    waits = [r.data_wait_pct for r in rows if r.data_wait_pct is not None]
    if waits:
        wait = sorted(waits)[len(waits) // 2]
        section["summary"]["data_wait_pct_median"] = wait
        if wait > 30:
            section["verdicts"].append(verdict("warn", f"the loop waited for data {wait:.0f}% of the time: the "
                                               "input pipeline, not the model, sets these times"))
    section["charts"] = datascale_charts(section["rows"], analysis)
    return section


# -- batchsweep ----------------------------------------------------------------------------------

def run_batchsweep_section(ctx) -> dict:
    cfg = ctx.settings.batchsweep
    job = ctx.configs.job
    section = new_section(TITLES["batchsweep"])
    cap = int(cfg.memory_cap_gib * GIB) if cfg.memory_cap_gib > 0 else None
    device = ctx.device
    settings = bs.SweepSettings(cfg.start_batch, cfg.max_batch, cfg.warmup_steps, cfg.timed_steps,
                                cfg.bisect_steps, cap, device)
    capacity = cap if cap else bs.gpu_capacity_bytes(device)
    rows, analyses, skipped = [], {}, []
    for variant in cfg.variants:
        reason = bs.variant_unavailable_reason(variant, device)
        if reason:
            skipped.append({"variant": variant, "reason": reason})
            continue
        ctx.say(f"batchsweep: building {variant}")
        make = bs.model_step_factory(job.model, job.train, variant, device)
        found = bs.sweep(make, variant, settings, on_row=lambda r: ctx.say(
            f"batchsweep {r.variant}: batch {r.batch_size} {r.status}"))
        del make
        bs.free_memory()
        rows += found
        analyses[variant] = bs.analyze(found, capacity)
    section["rows"] = [r.as_dict() for r in rows]
    if skipped:
        section["tables"].append({"title": "Variants not run here", "rows": skipped})
    section["tables"].append({"title": "Per-variant analysis", "rows": [
        {"variant": v, **{k: a[k] for k in ("found_max_batch", "first_oom_batch", "predicted_max_batch",
                                             "prediction_error_rel", "bytes_per_sample", "fixed_bytes",
                                             "linear_memory", "knee_batch", "max_samples_per_s")}}
        for v, a in analyses.items()]})
    memory_kind = rows[0].memory_kind if rows else "host_rss"
    simulated = any(r.oom_simulated for r in rows)
    section["summary"] = {"memory_kind": memory_kind, "capacity_gib": capacity / GIB if capacity else None,
                          "oom_simulated": simulated, "variants": list(analyses)}
    if memory_kind == "host_rss":
        section["verdicts"].append(verdict("info", "CPU run: memory is host RSS growth over the process "
                                           "baseline" + (f", and an OOM is simulated by a {cfg.memory_cap_gib:g} GiB cap"
                                                         if cap else ", with no cap: no OOM can occur")))
    for variant, a in analyses.items():
        section["verdicts"] += batchsweep_verdicts(variant, a)
    section["charts"] = batchsweep_charts(section["rows"], analyses, memory_kind, simulated)
    return section


def batchsweep_verdicts(variant: str, a: dict) -> list[dict]:
    out = []
    if a["fit"] and a["linear_memory"] is None:
        out.append(verdict("info", f"{variant}: fewer than three batch sizes fitted; too few to judge "
                                   "whether memory grows linearly"))
    elif a["fit"]:
        lin = a["linear_memory"]
        out.append(verdict("pass" if lin else "warn",
                           f"{variant}: memory {'grows linearly' if lin else 'is not linear'} in batch "
                           f"({a['bytes_per_sample'] / 2**20:.3g} MiB/sample + {a['fixed_bytes'] / GIB:.3g} GiB, "
                           f"R² {a['fit']['r2']:.3f})"
                           + ("" if lin else "; consider sharding (FSDP) or mixed precision")))
    if a["first_oom_batch"]:
        err = a["prediction_error_rel"]
        pred = a["predicted_max_batch"]
        text = f"{variant}: largest batch that fits {a['found_max_batch']}, first OOM at {a['first_oom_batch']}"
        if pred is not None and err is not None:
            text += f"; the fit predicted {pred} ({100 * err:+.0f}%)"
        out.append(verdict("pass" if err is not None and abs(err) <= thresholds.MAX_BATCH_PREDICTION_REL else "info", text))
        cached = a.get("unallocated_at_first_oom_bytes")
        if err is not None and abs(err) > thresholds.MAX_BATCH_PREDICTION_REL and cached and a["capacity_bytes"] and cached > 0.05 * a["capacity_bytes"]:
            out.append(verdict("warn", f"{variant}: at the first OOM {cached / GIB:.1f} GiB was reserved by the "
                                       "allocator but unallocated: fragmentation, not the model's memory, set the "
                                       "limit; PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True lets that memory "
                                       "serve large batches"))
    elif a["found_max_batch"]:
        out.append(verdict("info", f"{variant}: no OOM up to batch {a['found_max_batch']}"
                           + (f"; the fit predicts the limit near {a['predicted_max_batch']}" if a["predicted_max_batch"] else "")))
    if a.get("error_batch"):
        out.append(verdict("warn", f"{variant}: the sweep ended at batch {a['error_batch']} on an error that is not "
                                   f"a memory limit ({a['error']}); larger batches were not measured"))
    if a["knee_batch"]:
        out.append(verdict("info", f"{variant}: throughput knee at batch {a['knee_batch']} "
                           f"(max {a['max_samples_per_s']:.4g} samples/s)"))
    return out


# -- scaling -------------------------------------------------------------------------------------

def run_scaling_section(ctx) -> dict:
    cfg = ctx.settings.scaling
    n_gpus = torch.cuda.device_count() if ctx.device == "cuda" else 0
    max_world = min(n_gpus, cfg.max_world) if cfg.max_world else n_gpus
    if max_world < 2 and not cfg.cpu_smoke:
        return new_section(TITLES["scaling"], "skipped",
                           f"needs 2 or more GPUs; this machine has {n_gpus}. Run `mmscale bench scaling` "
                           "on a multi-GPU host (or set validate.scaling.cpu_smoke=true for a 2-process CPU smoke test)")
    device = "cuda" if max_world >= 2 else "cpu"
    worlds = [w for w in (1, 2, 4, 8, 16) if w <= max(max_world, 2)] if device == "cuda" else [1, 2]
    section = new_section(TITLES["scaling"])
    ctx.say(f"scaling: {cfg.strategies} on {worlds} {device} ranks")
    rows, errors = run_scaling(ctx.configs.job.model, ctx.configs.job.train, worlds, list(cfg.strategies),
                               cfg.per_rank_batch, cfg.steps, cfg.warmup_steps, device, ctx.run_dir / "scaling",
                               strong_global_batch=cfg.strong_global_batch)
    section["rows"] = [r.as_dict() for r in rows]
    if errors:
        section["tables"].append({"title": "Launches or regimes that failed", "rows": errors})
        section["verdicts"].append(verdict("fail", f"{len(errors)} torchrun launch(es) or regime(s) failed "
                                           "(a regime: out of memory); see the table"))
    if device == "cpu":
        section["verdicts"].append(verdict("info", "CPU smoke test with gloo: exercises the code path, "
                                           "its efficiency says nothing about GPUs"))
    for r in rows:
        if r.world_size > 1 and r.efficiency is not None:
            section["verdicts"].append(verdict(scaling_level(r.efficiency, device), scaling_verdict(r)))
    section["charts"] = scaling_charts(section["rows"])
    if not rows and not errors:
        section["reason"] = "no launch produced rows"
    return section


def scaling_level(efficiency: float, device: str) -> str:
    """pass at ``thresholds.SCALING_EFFICIENCY`` and above, else warn; on CPU always info: gloo processes on shared cores test
    the code path, and their efficiency passes no judgement on how the model scales."""
    if device == "cpu":
        return "info"
    return "pass" if efficiency >= thresholds.SCALING_EFFICIENCY else "warn"


def scaling_verdict(row) -> str:
    """One multi-rank row in words: efficiency, then the evidence for where the loss is."""
    text = f"{row.strategy} {row.regime} x{row.world_size}: efficiency {row.efficiency:.2f}"
    if row.comm_share is not None:
        text += f", exposed communication {100 * row.comm_share:.0f}% of the step"
    if row.comm_ms_at_link is not None:
        text += (f"; the link needs {row.comm_ms_at_link:.1f} ms for its {row.comm_bus_gb:.2f} GB a step "
                 f"(of a {row.step_ms:.1f} ms step)")
    if row.issue_ms is not None and row.issue_ms >= 0.9 * row.step_ms:
        text += (f"; host-bound: the step call took {row.issue_ms:.1f} ms to return, so each rank's own "
                 "host work (or a device sync inside the step) sets the pace, not the link")
    return text


# -- data, pipeline, load: measured by their own benchmark modules -------------------------------

def run_data_section(ctx) -> dict:
    if not module_available("mmscale.bench.data_loading"):
        return unavailable("data", "mmscale.bench.data_loading")
    return external.data_section(ctx, TITLES["data"])


def run_pipeline_section(ctx) -> dict:
    if not module_available("mmscale.bench.pipeline"):
        return unavailable("pipeline", "mmscale.bench.pipeline")
    return external.pipeline_section(ctx, TITLES["pipeline"])


def run_load_section(ctx) -> dict:
    if not module_available("mmscale.bench.load") or not module_available("mmscale.serve.app"):
        return unavailable("load", "load test (mmscale.bench.load with a spawned mmscale.serve server)")
    missing = missing_modules("serve")
    if missing:
        return new_section(TITLES["load"], "unavailable",
                           f"the server and load generator need {', '.join(missing)}, not installed here "
                           f"({install_hint('serve')}), so no server was spawned")
    return external.load_section(ctx, TITLES["load"])


RUNNERS = {
    "data": run_data_section,
    "pipeline": run_pipeline_section,
    "datascale": run_datascale_section,
    "batchsweep": run_batchsweep_section,
    "load": run_load_section,
    "scaling": run_scaling_section,
}


# -- monitor and headline metrics ----------------------------------------------------------------

def monitor_section(monitor, run_dir, file_name: str = "monitor.jsonl") -> dict:
    """The monitor's report section; writes its timeline to ``run_dir/file_name``."""
    if monitor is None:
        return new_section(TITLES["monitor"], "unavailable", "the hardware monitor could not start")
    section = new_section(TITLES["monitor"])
    rows = monitor.rows()
    monitor.write_jsonl(Path(run_dir) / file_name)
    summary = monitor.summary()
    section["summary"] = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    fields = summary.get("fields") or {}
    section["tables"].append({"title": "Field statistics over the whole run",
                              "rows": [{"field": k, **v} for k, v in fields.items() if isinstance(v, dict)]})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    section["charts"] = monitor_charts(rows, getattr(monitor, "marks", []), cores)
    if summary.get("gpu_count"):
        gpu = (f"{summary['gpu_count']} GPU(s) through NVML, SM activity from "
               f"{summary.get('gpu_activity_source') or 'NVML utilization only'}")
    else:
        gpu = f"no GPU fields ({summary.get('gpu_note') or 'no NVML device'})"
    section["verdicts"].append(verdict("info", f"{len(rows)} samples over {summary.get('span_s') or 0:.0f} s "
                                       f"at {summary.get('achieved_hz') or 0:.1f} Hz; {gpu}; full series in {file_name}"))
    return section


def collect_metrics(sections: dict) -> dict:
    """Headline figures with their repeats, for ``compare``."""
    out = {}
    ds = sections.get("datascale", {})
    if ds.get("status") == "ok":
        for n in sorted({r["n_samples"] for r in ds["rows"]}):
            values = [r["samples_per_s"] for r in ds["rows"] if r["n_samples"] == n]
            out[f"datascale.samples_per_s@{n}"] = metric(values, "samples/s", True, "datascale",
                                                         "one value per repeat")
            rss = [r["peak_rss_gib"] for r in ds["rows"] if r["n_samples"] == n]
            out[f"datascale.peak_rss_gib@{n}"] = metric(rss, "GiB", False, "datascale")
    bs = sections.get("batchsweep", {})
    if bs.get("status") == "ok":
        for r in bs["rows"]:
            if r["status"] == "ok" and r["phase"] == "double" and r["step_ms_values"]:
                out[f"batchsweep.{r['variant']}.samples_per_s@{r['batch_size']}"] = metric(
                    [r["batch_size"] / (t / 1e3) for t in r["step_ms_values"] if t > 0], "samples/s", True,
                    "batchsweep", "one value per timed step")
                out[f"batchsweep.{r['variant']}.peak_gib@{r['batch_size']}"] = metric(
                    [r["peak_bytes"] / GIB], "GiB", False, "batchsweep")
        for t in bs.get("tables", []):  # the measured limit, which an earlier run's answer may have predicted
            for a in t["rows"] if t["title"] == "Per-variant analysis" else []:
                if a.get("first_oom_batch") and a.get("found_max_batch"):
                    out[f"batchsweep.{a['variant']}.max_batch"] = metric([a["found_max_batch"]], "samples", True,
                                                                          "batchsweep", "largest batch that fitted")
    sc = sections.get("scaling", {})
    if sc.get("status") == "ok":
        for r in sc["rows"]:
            out[f"scaling.{r['strategy']}.{r['regime']}.samples_per_s@x{r['world_size']}"] = metric(
                [r["global_batch"] / (t / 1e3) for t in r["step_ms_values"] if t > 0], "samples/s", True, "scaling")
            if r["world_size"] > 1 and r.get("efficiency") is not None:
                out[f"scaling.{r['strategy']}.{r['regime']}.efficiency@x{r['world_size']}"] = metric(
                    [r["efficiency"]], "", True, "scaling")
    if sections.get("load", {}).get("status") == "ok":
        out.update(external.load_metrics(sections["load"]))
    if sections.get("data", {}).get("status") == "ok":
        out.update(external.data_metrics(sections["data"]))
    return {k: v for k, v in out.items() if v["values"] and all(math.isfinite(x) for x in v["values"])}
