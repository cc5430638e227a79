"""Validate sections whose measurements come from other benchmark modules: load, data, pipeline.

Each adapter calls the module's library function and maps its rows into the report's section
shape (rows, verdicts, chart specs); the measuring stays in the benchmark module.
"""

from __future__ import annotations

import dataclasses

from mmscale.report.results import new_section, verdict
from mmscale.validate_charts import series


def load_section(ctx, title: str) -> dict:
    """Spawn ``mmscale serve`` with this preset's model on a free loopback port and load it."""
    from mmscale.bench.load import LoadConfig, bench_load
    from mmscale.bench.load_spawn import SpawnedServer

    cfg = ctx.settings.load
    serve_args = ["--server", cfg.server, "--device", ctx.device]
    if ctx.configs.preset:
        serve_args += ["--preset", ctx.configs.preset]
    if ctx.device == "cpu":
        serve_args += ["--cpu-threads", "1"]
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
    section["summary"] = {"server": cfg.server, "slo": cfg.slo, "headline": result.headline,
                          "search": result.search}
    section["verdicts"].append(verdict("info", result.headline))
    for warning in result.warnings:
        section["verdicts"].append(verdict("warn", warning))
    closed = sorted((r for r in rows if r["mode"] == "closed"), key=lambda r: r["concurrency"])
    if closed:
        xs = [r["concurrency"] for r in closed]
        section["charts"].append({
            "id": "load-latency", "title": "Latency percentiles vs concurrency", "x_label": "concurrent clients",
            "y_label": "latency (ms)", "log_x": True,
            "series": [series(p, xs, [r[f"{p}_ms"] for r in closed]) for p in ("p50", "p90", "p99")],
            "caption": f"Closed loop against the spawned {cfg.server} server; SLO {cfg.slo}."})
        section["charts"].append({
            "id": "load-throughput", "title": "Throughput vs concurrency", "x_label": "concurrent clients",
            "y_label": "requests/s", "log_x": True,
            "series": [series("throughput", xs, [r["throughput_per_s"] for r in closed]),
                       series("goodput (within SLO)", xs, [r["goodput_per_s"] for r in closed])]})
    return section


def load_metrics(section: dict) -> dict:
    from mmscale.report.results import metric

    out = {}
    for r in section.get("rows", []):
        if r.get("mode") == "closed" and r.get("ok"):
            out[f"load.p99_ms@c{r['concurrency']}"] = metric([r["p99_ms"]], "ms", False, "load",
                                                            f"window spread {r['spread']:.0%}")
            out[f"load.throughput_per_s@c{r['concurrency']}"] = metric([r["throughput_per_s"]], "req/s", True, "load")
    return out


def data_section(ctx, title: str) -> dict:
    return new_section(title, "unavailable", "not yet available: the data benchmark's library entry "
                       "point is not wired into validate in this build")


def pipeline_section(ctx, title: str) -> dict:
    return new_section(title, "unavailable", "not yet available: the pipeline analyzer's library entry "
                       "point is not wired into validate in this build")
