"""Chart specs for each validate section, built from its rows and analysis (plain data).

The specs go into results.json and ``mmscale.report.plots`` draws them; keeping them as data
means ``mmscale report RUN_DIR`` redraws every figure without re-running anything.
"""

from __future__ import annotations

GIB = 2**30


def series(label: str, xs, ys, style: str = "line+points") -> dict:
    return {"label": label, "x": list(xs), "y": [None if y is None else float(y) for y in ys], "style": style}


def datascale_charts(rows: list[dict], analysis: dict) -> list[dict]:
    sizes = [r["n_samples"] for r in rows]
    charts = []
    time_series = [series("measured", sizes, [r["train_wall_s"] for r in rows], "points")]
    fit = analysis.get("time_fit")
    if fit:
        xs = sorted(set(sizes))
        time_series.append(series(f"fit: {fit['slope'] * 1e3:.3g} s per 1k samples + {fit['intercept']:.3g} s "
                                  f"(R² {fit['r2']:.3f})", [0] + xs, [fit["intercept"]] + [fit["slope"] * x + fit["intercept"] for x in xs], "dashed"))
    charts.append({"id": "datascale-time", "title": "Training time vs dataset size", "x_label": "samples (N)",
                   "y_label": "training loop time (s)", "series": time_series,
                   "caption": f"Same epochs at every N; log-log growth exponent {analysis.get('time_exponent') or 0:.2f} "
                              "(1.0 = linear)."})
    mem = [series("peak host RSS", sizes, [r["peak_rss_gib"] for r in rows], "points")]
    if any(r.get("peak_gpu_gib") is not None for r in rows):
        mem.append(series("peak GPU allocated", sizes, [r.get("peak_gpu_gib") for r in rows], "points"))
    charts.append({"id": "datascale-memory", "title": "Peak memory vs dataset size", "x_label": "samples (N)",
                   "y_label": "GiB", "series": mem,
                   "caption": "A streamed pipeline keeps memory flat as N grows."})
    return charts


def batchsweep_charts(rows: list[dict], analyses: dict, memory_kind: str, oom_simulated: bool) -> list[dict]:
    mem_series, thr_series, vlines, hlines = [], [], [], []
    for variant, analysis in analyses.items():
        ok = sorted((r for r in rows if r["variant"] == variant and r["status"] == "ok"), key=lambda r: r["batch_size"])
        if not ok:
            continue
        mem_series.append(series(f"{variant} measured", [r["batch_size"] for r in ok],
                                 [r["peak_bytes"] / GIB for r in ok], "points"))
        fit = analysis.get("fit")
        if fit:
            top = max(analysis.get("first_oom_batch") or ok[-1]["batch_size"], ok[-1]["batch_size"])
            xs = [0, top]
            mem_series.append(series(f"{variant} fit: {fit['slope'] / 2**20:.3g} MiB/sample + "
                                     f"{fit['intercept'] / GIB:.3g} GiB (R² {fit['r2']:.3f})",
                                     xs, [(fit["slope"] * x + fit["intercept"]) / GIB for x in xs], "dashed"))
        if analysis.get("first_oom_batch"):
            vlines.append({"value": analysis["first_oom_batch"], "label": f"{variant} first OOM"})
        thr_series.append(series(variant, [r["batch_size"] for r in ok], [r["samples_per_s"] for r in ok]))
        if analysis.get("knee_batch"):
            vlines_knee = analysis["knee_batch"]
            thr_series.append(series(f"{variant} knee", [vlines_knee],
                                     [next(r["samples_per_s"] for r in ok if r["batch_size"] == vlines_knee)], "points"))
    capacity = next((a["capacity_bytes"] for a in analyses.values() if a.get("capacity_bytes")), None)
    if capacity:
        hlines.append({"value": capacity / GIB, "label": "memory cap (OOM simulated above it)"
                       if memory_kind == "host_rss" else "device capacity"})
    charts = []
    what = "peak GPU memory allocated" if memory_kind == "gpu_allocated" else "peak host RSS growth"
    if mem_series:
        charts.append({"id": "batchsweep-memory", "title": "Memory vs batch size", "x_label": "batch size",
                       "y_label": f"{what} (GiB)", "series": mem_series, "vlines": vlines, "hlines": hlines,
                       "caption": "Fit on the doubling points only; the bisection points check it."
                                  + (" On CPU the OOM is simulated by a memory cap." if oom_simulated else "")})
    if thr_series:
        charts.append({"id": "batchsweep-throughput", "title": "Training throughput vs batch size (what-if variants)",
                       "x_label": "batch size", "y_label": "samples/s", "series": thr_series, "log_x": True,
                       "caption": "Knee: the batch past which doubling gains less than 10%."})
    return charts


def scaling_charts(rows: list[dict]) -> list[dict]:
    charts = []
    eff = [series(f"{s} {r}", [x["world_size"] for x in rows if x["strategy"] == s and x["regime"] == r],
                  [x["efficiency"] for x in rows if x["strategy"] == s and x["regime"] == r])
           for s in sorted({x["strategy"] for x in rows}) for r in ("weak", "strong")
           if any(x["strategy"] == s and x["regime"] == r for x in rows)]
    if eff:
        charts.append({"id": "scaling-efficiency", "title": "Scaling efficiency", "x_label": "ranks",
                       "y_label": "efficiency (1.0 = linear)", "series": eff,
                       "hlines": [{"value": 1.0, "label": "linear"}]})
    multi = [x for x in rows if x["world_size"] > 1 and x.get("comm_ms_at_link") is not None]
    if multi:
        names = [f"{x['strategy']} {x['regime']} x{x['world_size']}" for x in multi]
        charts.append({
            "id": "scaling-step-time", "title": "Where a multi-rank step's time goes", "x_label": "",
            "y_label": "ms per step", "series": [
                series("step", names, [x["step_ms"] for x in multi], "bar"),
                series("host issue (step call returned)", names, [x.get("issue_ms") for x in multi], "bar"),
                series("exposed communication", names,
                       [None if x.get("comm_share") is None else x["comm_share"] * x["step_ms"] for x in multi], "bar"),
                series("link time for the step's bytes", names, [x["comm_ms_at_link"] for x in multi], "bar")],
            "caption": "Link time: the bytes the strategy moves per step at the bus bandwidth measured in the "
                       "same process group. A host-issue bar as tall as the step means the host sets the pace."})
    return charts


def monitor_charts(rows: list[dict]) -> list[dict]:
    if not rows:
        return []
    t = [r.get("t_s") for r in rows]
    charts = [{"id": "monitor-cpu", "title": "Host timeline", "x_label": "time (s)", "y_label": "% of one core / GiB",
               "series": [series("process CPU % (with workers)", t, [r.get("cpu_pct") for r in rows], "line"),
                          series("RSS GiB x100", t, [None if r.get("rss_gib") is None else 100 * r["rss_gib"] for r in rows], "line")]}]
    for key, name in (("main_thread_cpu_pct", "main thread CPU %"), ("main_thread_wait_pct", "main thread waiting for a core %")):
        if any(r.get(key) is not None for r in rows):  # Linux schedstat: the loop thread, apart from its workers
            charts[0]["series"].append(series(name, t, [r.get(key) for r in rows], "line"))
    gpus = sorted({k.split("_", 1)[0] for r in rows[:1] for k in r if k.startswith("gpu") and k.endswith("_util_pct")})
    if gpus:
        util = [series(f"{g} util %", t, [r.get(f"{g}_util_pct") for r in rows], "line") for g in gpus]
        util += [series(f"{g} SM active %", t, [r.get(f"{g}_sm_active_pct") for r in rows], "line")
                 for g in gpus if any(r.get(f"{g}_sm_active_pct") is not None for r in rows)]
        util += [series(f"{g} memory GiB", t, [r.get(f"{g}_mem_used_gib") for r in rows], "line") for g in gpus]
        charts.append({"id": "monitor-gpu", "title": "GPU timeline", "x_label": "time (s)", "y_label": "% / GiB",
                       "series": util})
    return charts
