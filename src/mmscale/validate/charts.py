"""Chart specs for each validate section, built from its rows and analysis (plain data).

The specs go into results.json and ``mmscale.report.plots`` draws them; keeping them as data
means ``mmscale report RUN_DIR`` redraws every figure without re-running anything.
"""

from __future__ import annotations

GIB = 2**30


def series(label: str, xs, ys, style: str = "line+points") -> dict:
    return {"label": label, "x": list(xs), "y": [None if y is None else float(y) for y in ys], "style": style}


def chart(chart_id: str, title: str, x: tuple[str, str], y: tuple[str, str], series_list: list[dict], **extra) -> dict:
    """A chart spec with one unit per axis: ``x`` and ``y`` are (what, unit); every series is in the y unit."""
    (x_what, x_unit), (y_what, y_unit) = x, y
    return {"id": chart_id, "title": title, "x_label": f"{x_what} ({x_unit})" if x_unit else x_what,
            "y_label": f"{y_what} ({y_unit})" if y_unit else y_what, "x_unit": x_unit, "y_unit": y_unit,
            "series": [{**s, "unit": y_unit} for s in series_list], **extra}


def datascale_charts(rows: list[dict], analysis: dict) -> list[dict]:
    sizes = [r["n_samples"] for r in rows]
    charts = []
    time_series = [series("measured", sizes, [r["train_wall_s"] for r in rows], "points")]
    fit = analysis.get("time_fit")
    if fit:
        xs = sorted(set(sizes))
        time_series.append(series(f"fit: {fit['slope'] * 1e3:.3g} s per 1k samples + {fit['intercept']:.3g} s "
                                  f"(R² {fit['r2']:.3f})", [0] + xs, [fit["intercept"]] + [fit["slope"] * x + fit["intercept"] for x in xs], "dashed"))
    charts.append(chart("datascale-time", "Training time vs dataset size", ("dataset size", "samples"),
                        ("training loop time", "s"), time_series,
                        caption=f"Same epochs at every N; log-log growth exponent "
                                f"{analysis.get('time_exponent') or 0:.2f} (1.0 = linear)."))
    mem = [series("peak host RSS", sizes, [r["peak_rss_gib"] for r in rows], "points")]
    if any(r.get("peak_gpu_gib") is not None for r in rows):
        mem.append(series("peak GPU allocated", sizes, [r.get("peak_gpu_gib") for r in rows], "points"))
    charts.append(chart("datascale-memory", "Peak memory vs dataset size", ("dataset size", "samples"),
                        ("peak memory", "GiB"), mem, caption="A streamed pipeline keeps memory flat as N grows."))
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
        charts.append(chart("batchsweep-memory", "Memory vs batch size", ("batch size", "samples"), (what, "GiB"),
                            mem_series, vlines=vlines, hlines=hlines,
                            caption="Fit on the doubling points only; the bisection points check it."
                                    + (" On CPU the OOM is simulated by a memory cap." if oom_simulated else "")))
    if thr_series:
        charts.append(chart("batchsweep-throughput", "Training throughput vs batch size (what-if variants)",
                            ("batch size", "samples"), ("training throughput", "samples/s"), thr_series, log_x=True,
                            caption="Knee: the batch past which doubling gains less than 10%."))
    return charts


def scaling_charts(rows: list[dict]) -> list[dict]:
    charts = []
    eff = [series(f"{s} {r}", [x["world_size"] for x in rows if x["strategy"] == s and x["regime"] == r],
                  [x["efficiency"] for x in rows if x["strategy"] == s and x["regime"] == r])
           for s in sorted({x["strategy"] for x in rows}) for r in ("weak", "strong")
           if any(x["strategy"] == s and x["regime"] == r for x in rows)]
    if eff:
        charts.append(chart("scaling-efficiency", "Scaling efficiency", ("ranks", "count"),
                            ("efficiency, 1.0 = linear", "ratio"), eff, hlines=[{"value": 1.0, "label": "linear"}]))
    multi = [x for x in rows if x["world_size"] > 1 and x.get("comm_ms_at_link") is not None]
    if multi:
        names = [f"{x['strategy']} {x['regime']} x{x['world_size']}" for x in multi]
        charts.append(chart(
            "scaling-step-time", "Where a multi-rank step's time goes", ("regime", ""), ("time per step", "ms"), [
                series("step", names, [x["step_ms"] for x in multi], "bar"),
                series("host issue (step call returned)", names, [x.get("issue_ms") for x in multi], "bar"),
                series("exposed communication", names,
                       [None if x.get("comm_share") is None else x["comm_share"] * x["step_ms"] for x in multi], "bar"),
                series("link time for the step's bytes", names, [x["comm_ms_at_link"] for x in multi], "bar")],
            caption="Link time: the bytes the strategy moves per step at the bus bandwidth measured in the "
                    "same process group. A host-issue bar as tall as the step means the host sets the pace."))
    return charts


def section_marks(marks: list[dict]) -> list[dict]:
    """Vertical lines at each section's start on a timeline (the monitor's ``"<section> start"`` marks)."""
    return [{"value": m["t_s"], "label": m["mark"].removesuffix(" start")}
            for m in marks or [] if str(m.get("mark", "")).endswith(" start")]


def monitor_charts(rows: list[dict], marks: list[dict] | None = None, cores: int | None = None) -> list[dict]:
    """Timelines, one unit per chart: CPU (% of one core), host memory (GiB), GPU activity (%), GPU memory (GiB)."""
    if not rows:
        return []
    t = [r.get("t_s") for r in rows]
    vlines = section_marks(marks)
    time_axis = ("time since start", "s")
    cpu = [series("process CPU (with workers)", t, [r.get("cpu_pct") for r in rows], "line")]
    for key, name in (("main_thread_cpu_pct", "main thread CPU"), ("main_thread_wait_pct", "main thread waiting for a core")):
        if any(r.get(key) is not None for r in rows):  # Linux schedstat: the loop thread, apart from its workers
            cpu.append(series(name, t, [r.get(key) for r in rows], "line"))
    over = [r for r in rows if cores and (r.get("cpu_pct") or 0) > 100.0 * cores]
    charts = [chart("monitor-cpu", "Host CPU timeline", time_axis, ("CPU", "% of one core"), cpu, vlines=vlines,
                    hlines=[{"value": 100.0 * cores, "label": f"all {cores} cores"}] if cores else [],
                    caption=(f"⚠ {len(over)} sample(s) above the red line, more CPU than {cores} cores can give: "
                             "a sampling artifact, not a measurement" if over else "Section starts marked.")),
              chart("monitor-memory", "Host memory timeline", time_axis, ("resident memory", "GiB"),
                    [series("process RSS (with workers)", t, [r.get("rss_gib") for r in rows], "line")], vlines=vlines)]
    gpus = sorted({k.split("_", 1)[0] for r in rows[:1] for k in r if k.startswith("gpu") and k.endswith("_util_pct")})
    if gpus:
        util = [series(f"{g} utilization", t, [r.get(f"{g}_util_pct") for r in rows], "line") for g in gpus]
        util += [series(f"{g} SM active", t, [r.get(f"{g}_sm_active_pct") for r in rows], "line")
                 for g in gpus if any(r.get(f"{g}_sm_active_pct") is not None for r in rows)]
        memory = [series(f"{g} memory used", t, [r.get(f"{g}_mem_used_gib") for r in rows], "line") for g in gpus]
        charts.append(chart("monitor-gpu", "GPU activity timeline", time_axis, ("activity", "%"), util, vlines=vlines))
        charts.append(chart("monitor-gpu-memory", "GPU memory timeline", time_axis, ("memory used", "GiB"), memory,
                            vlines=vlines))
    return charts
