"""Validate sections whose measurements come from other benchmark modules: load, data, pipeline.

Each adapter calls the module's library function and maps its rows into the report's section
shape (rows, verdicts, chart specs); the measuring stays in the benchmark module.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mmscale.bench.data_loading import bench_data_loading, speedup
from mmscale.bench.load.runner import LoadConfig, bench_load
from mmscale.bench.load.spawn import SpawnedServer
from mmscale.bench.pipeline.analyze import PipelineConfig, bench_pipeline
from mmscale.bench.thresholds import DATA_LOADER_SPEEDUP
from mmscale.data.readers import resolve_source
from mmscale.report.results import metric, new_section, verdict
from mmscale.validate.charts import chart, series


def load_section(ctx, title: str) -> dict:
    """Spawn ``mmscale serve`` with this preset's model on a free loopback port and load it."""
    cfg = ctx.settings.load
    serve_args = ["--server", cfg.server, "--device", ctx.device]
    if ctx.configs.preset:
        serve_args += ["--preset", ctx.configs.preset]
    if ctx.device == "cpu":
        serve_args += ["--cpu-threads", "1"]
    serve_args += list(cfg.serve_args)  # last: they win over the defaults above
    section = new_section(title)
    ctx.say(f"load: starting the {cfg.server} server")
    with SpawnedServer(serve_args) as server:
        load_cfg = LoadConfig(url=server.url, concurrencies=list(cfg.concurrency), window_s=cfg.window_s,
                              max_windows=cfg.max_windows, stable_windows=min(3, cfg.max_windows),
                              processes=cfg.processes, slo=cfg.slo, warmup_s=min(1.0, cfg.window_s))
        ctx.say(f"load: concurrency {list(cfg.concurrency)} against {server.url}")
        result = bench_load(load_cfg, server=cfg.server, progress=False)
    rows = [dataclasses.asdict(r) for r in result.rows]
    section["rows"] = rows
    section["summary"] = {"server": cfg.server, "serve_args": " ".join(cfg.serve_args), "slo": cfg.slo,
                          "headline": result.headline, "search": result.search}
    section["verdicts"].append(verdict("info", f"{cfg.server} server ({' '.join(cfg.serve_args) or 'default options'}): "
                                       f"{result.headline}"))
    for warning in result.warnings:
        section["verdicts"].append(verdict("warn", warning))
    closed = sorted((r for r in rows if r["mode"] == "closed"), key=lambda r: r["concurrency"])
    if closed:
        xs = [r["concurrency"] for r in closed]
        section["charts"].append(chart(
            "load-latency", "Latency percentiles vs concurrency", ("concurrent clients", "count"), ("latency", "ms"),
            [series(p, xs, [r[f"{p}_ms"] for r in closed]) for p in ("p50", "p90", "p99")], log_x=True,
            caption=f"Closed loop against the spawned {cfg.server} server; SLO {cfg.slo}."))
        section["charts"].append(chart(
            "load-throughput", "Throughput vs concurrency", ("concurrent clients", "count"), ("throughput", "requests/s"),
            [series("throughput", xs, [r["throughput_per_s"] for r in closed]),
             series("goodput (within SLO)", xs, [r["goodput_per_s"] for r in closed])], log_x=True))
    return section


def load_metrics(section: dict) -> dict:
    out = {}
    for r in section.get("rows", []):
        if r.get("mode") == "closed" and r.get("ok"):
            out[f"load.p99_ms@c{r['concurrency']}"] = metric([r["p99_ms"]], "ms", False, "load",
                                                            f"window spread {r['spread']:.0%}")
            out[f"load.throughput_per_s@c{r['concurrency']}"] = metric([r["throughput_per_s"]], "req/s", True, "load")
    return out


def data_section(ctx, title: str) -> dict:
    """Reference loader against ours on the same files (``bench.data_loading``)."""
    cfg, job = ctx.settings.data, ctx.configs.job
    section = new_section(title)
    source = resolve_source(job.data.path, job.data.format, "train")
    if source.fmt == "wds":
        return new_section(title, "skipped", "the data benchmark compares loaders on a manifest of image "
                           "files; this dataset is WebDataset shards")
    workers = max(1, job.data.num_workers)
    rows = bench_data_loading(str(source.files[0]), n_images=cfg.batches * cfg.batch_size, workers=workers,
                              batch_size=cfg.batch_size, image_size=job.data.image_size, device=ctx.device,
                              progress=lambda text: ctx.say(f"data: {text}"))
    section["rows"] = [r.as_dict() for r in rows]
    ratio = speedup(rows)
    section["summary"] = {"workers": workers, "batch_size": cfg.batch_size, "image_size": job.data.image_size,
                          "ours_vs_reference_dataloader": ratio or None}
    if ratio:
        meets = ratio >= DATA_LOADER_SPEEDUP
        section["verdicts"].append(verdict("pass" if meets else "warn",
                                           f"our loader delivers {ratio:.2f}x the reference DataLoader's images/s "
                                           f"with {workers} worker(s) ({'meets' if meets else 'misses'} the "
                                           f"{DATA_LOADER_SPEEDUP:g}x target)"))
    ceiling = next((r.img_per_s for r in rows if r.variant == "decode_only"), None)
    ours = next((r.img_per_s for r in rows if r.variant == "ours_cpu"), None)
    if ceiling and ours:
        section["verdicts"].append(verdict("info", f"ours reaches {100 * ours / ceiling:.0f}% of the decode-only "
                                           "ceiling (read + decode + resize, nothing else)"))
    section["charts"].append(chart(
        "data-throughput", "Data loading throughput by variant", ("variant", ""), ("throughput", "images/s"),
        [series("images/s", [r.variant for r in rows], [r.img_per_s for r in rows], "bar")],
        caption="Same files, page cache warm, one run."))
    return section


def data_metrics(section: dict) -> dict:
    return {f"data.img_per_s.{r['variant']}": metric([r["img_per_s"]], "images/s", True, "data")
            for r in section.get("rows", []) if r.get("img_per_s")}


def pipeline_section(ctx, title: str) -> dict:
    """Stage breakdown of the training step, bottleneck verdict and what-if variants."""
    cfg = ctx.settings.pipeline
    job_overrides = [o for o in ctx.configs.overrides if o.split(".", 1)[0].strip() in ("data", "model", "train")]
    result = bench_pipeline(PipelineConfig(
        preset=ctx.configs.preset or "tiny", overrides=job_overrides, data=str(ctx.data_path),
        out_dir=str(ctx.run_dir / "pipeline"), device=ctx.device, steps=cfg.steps, warmup=cfg.warmup,
        groups=list(cfg.groups), trace_dir=str(ctx.run_dir / "pipeline")),
        progress=lambda text: ctx.say(f"pipeline: {text}"))
    section = new_section(title)
    stages = result.stages
    verdict_name = result.verdict.get("name")
    section["verdicts"].append(verdict("warn" if verdict_name == "input-bound" else "info",
                                       f"the training step is {verdict_name}"))
    for line in result.verdict.get("evidence", []):
        section["verdicts"].append(verdict("info", line))
    if result.skipped:
        section["tables"].append({"title": "Not measured here",
                                  "rows": [{"what": k, "why": v} for k, v in result.skipped.items()]})
    section["summary"] = {"device": result.device, "batch_size": result.batch_size, "decode": result.decode,
                          "step_ms": stages.get("step_ms"), "samples_per_s": stages.get("samples_per_s"),
                          "unattributed_frac": stages.get("unattributed_frac"),
                          "gpu_idle_frac": result.profile.get("gpu_idle_frac"), "bottleneck": verdict_name,
                          "synthetic_samples_per_s": result.synthetic_samples_per_s or None}
    trace = result.profile.get("trace")
    if trace:  # relative to the run directory, where report.html links it
        section["summary"]["trace"] = Path(trace).relative_to(ctx.run_dir).as_posix() \
            if Path(trace).is_relative_to(ctx.run_dir) else trace
    stage_ms = {k: v for k, v in stages.get("stage_ms", {}).items() if v}
    section["tables"].append({"title": "Stage breakdown (mean per step)", "rows": [
        {"stage": k, "ms": v, "share": stages.get("shares", {}).get(k)} for k, v in stage_ms.items()]})
    if stage_ms:
        section["charts"].append(chart(
            "pipeline-stages", "Where one training step's time goes", ("stage", ""), ("time per step", "ms"),
            [series("ms", list(stage_ms), list(stage_ms.values()), "bar")],
            caption=f"Mean over {stages.get('steps')} steps; stages tile the step, "
                    f"{100 * (stages.get('unattributed_frac') or 0):.1f}% unattributed."))
    measured = [r for r in result.variants if r.get("samples_per_s")]
    section["rows"] = result.variants
    if measured:
        section["charts"].append(chart(
            "pipeline-variants", "What-if variants (same run)", ("variant", ""), ("training throughput", "samples/s"),
            [series("samples/s", [f"{r['group']}: {r['variant']}" for r in measured],
                    [r["samples_per_s"] for r in measured], "bar")]))
    if result.attention:
        section["tables"].append({"title": "Attention sweep", "rows": result.attention})
    return section
