"""The answer a run gives, computed from its results dict alone: what it does, what limits it, what to change.

``answer(doc)`` is pure: it reads the sections' rows, tables and summaries (never a benchmark) and
returns plain data that goes into results.json as ``answer``, on top of report.html and at the end
of the CLI output. Each prediction carries the fit behind it, a 95% interval where the fit gives
one, and the measurement that would confirm it; its ``id`` is the metric name a later run that
measures it writes, so ``mmscale compare`` can set predicted against measured.
"""

from __future__ import annotations

import re

from mmscale.bench import thresholds
from mmscale.report import predict
from mmscale.report.answer_changes import changes, job_variant, on_gpu
from mmscale.report.answer_text import answer_lines
from mmscale.report.bounds import find_flags
from mmscale.report.units import format_quantity

DATASCALE_TARGETS = (1_000_000, 10_000_000)
SCALING_TARGET_WORLD = 8
INPUT_STAGES = ("data_wait", "h2d", "decode")
STATUS_WORDS = {"failed": "failed", "skipped": "was not run", "unavailable": "was not available"}
GIB = 2**30


def _ok(sections: dict, name: str) -> dict | None:
    section = sections.get(name)
    return section if section and section.get("status") == "ok" else None


def device_label(doc: dict) -> str:
    """'GPU (NVIDIA H100 80GB HBM3)' or 'CPU device (2 cores)': what 'per device' means in this run."""
    env = doc.get("environment") or {}
    gpus = env.get("gpus") or []
    if on_gpu(doc) and gpus:
        return f"GPU ({gpus[0].get('name')})"
    cores = env.get("cpu_count_usable") or env.get("cpu_count")
    return f"CPU device ({cores} cores)" if cores else "CPU device"


def throughput(doc: dict) -> dict:
    """Training samples/s per device: the datascale loop at its largest N (data loading included),
    else the pipeline's main run; with the repeats' range as its interval."""
    sections = doc["sections"]
    out = {"id": "throughput", "what": f"training throughput per {device_label(doc)}", "unit": "samples/s",
           "value": None, "low": None, "high": None}
    ds = _ok(sections, "datascale")
    pipeline = _ok(sections, "pipeline")
    if ds and ds.get("rows"):
        n = max(r["n_samples"] for r in ds["rows"])
        values = sorted(r["samples_per_s"] for r in ds["rows"] if r["n_samples"] == n and r.get("samples_per_s"))
        if values:
            out.update(value=values[len(values) // 2], source=f"datascale training loop at N={n:,} "
                       f"({len(values)} repeat(s), data loading included)")
            if len(values) > 1:
                out.update(low=values[0], high=values[-1])
            else:
                out["interval_note"] = "one repeat, so no spread measured; validate.datascale.repeats=3 measures it"
    if out["value"] is None and pipeline and pipeline["summary"].get("samples_per_s"):
        out.update(value=pipeline["summary"]["samples_per_s"], source="pipeline main run",
                   interval_note="mean over the pipeline's timed steps, no spread stored")
    one_rank = [r for r in (_ok(sections, "scaling") or {}).get("rows", [])
                if r.get("world_size") == 1 and r.get("regime") == "weak" and r.get("samples_per_s")]
    if out["value"] is None and one_rank:
        row = max(one_rank, key=lambda r: r["samples_per_s"])
        values = sorted(row["global_batch"] / (t / 1e3) for t in row.get("step_ms_values") or [] if t > 0)
        out.update(value=row["samples_per_s"], source=f"scaling, {row['strategy']} on one rank, "
                   "training step on device-resident batches (no data loading)")
        if len(values) > 1:
            out.update(low=values[0], high=values[-1], interval_note="")
    if out["value"] is None:
        out["reason"] = "neither datascale, pipeline nor scaling measured a training step in this run"
        return out
    out["ms_per_sample"] = 1e3 / out["value"]
    out["device_hours_per_1m_samples"] = 1e6 / out["value"] / 3600
    return out


def bottleneck(doc: dict) -> dict:
    """The pipeline's verdict and the stage that takes the largest share of a step."""
    pipeline = _ok(doc["sections"], "pipeline")
    if not pipeline:
        return {"reason": not_run(doc, "pipeline")}
    summary = pipeline.get("summary") or {}
    name = summary.get("bottleneck")
    if not name:
        said = next((re.match(r"the training step is (.+)", v["text"]) for v in pipeline.get("verdicts", [])
                     if v["text"].startswith("the training step is")), None)
        name = said.group(1) if said else None
    stages = next((t["rows"] for t in pipeline.get("tables", []) if t["title"].startswith("Stage breakdown")), [])
    out = {"verdict": name, "step_ms": summary.get("step_ms")}
    if stages:
        top = max(stages, key=lambda r: r.get("ms") or 0)
        out.update(stage=top["stage"], stage_ms=top.get("ms"), share=top.get("share"),
                   input_share=sum(r.get("share") or 0 for r in stages if r["stage"] in INPUT_STAGES))
    return out


def max_batch(doc: dict) -> dict:
    """Largest batch: measured (last fit, first OOM) when the sweep reached an OOM, else the memory
    line solved for the capacity, with the inverse prediction's interval."""
    out = {"id": None, "what": "max batch", "unit": "samples", "value": None, "low": None, "high": None}
    bs = _ok(doc["sections"], "batchsweep")
    if not bs:
        out["reason"] = not_run(doc, "batchsweep")
        return out
    variant = job_variant(doc, bs["summary"].get("variants") or [])
    out.update(id=f"batchsweep.{variant}.max_batch", what=f"max batch ({variant})")
    analysis = next((r for t in bs.get("tables", []) if t["title"] == "Per-variant analysis"
                     for r in t["rows"] if r["variant"] == variant), {})
    rows = [r for r in bs["rows"] if r["variant"] == variant and r["status"] == "ok" and r["phase"] == "double"
            and r.get("peak_bytes") is not None]
    capacity_gib = bs["summary"].get("capacity_gib")
    simulated = bs["summary"].get("oom_simulated") or bs["summary"].get("memory_kind") == "host_rss"
    cap_text = f"{'a simulated ' if simulated else ''}{capacity_gib:.3g} GiB capacity" if capacity_gib else ""
    if len({r["batch_size"] for r in rows}) >= 2:
        line = predict.line_with_interval([r["batch_size"] for r in rows], [r["peak_bytes"] / GIB for r in rows])
        out["fit"] = (f"peak memory = {line.slope * 1024:.3g} MiB/sample x batch + {line.intercept:.3g} GiB "
                      f"(R² {line.r2:.3f}, {line.n_points} doubling points)")
        if capacity_gib:
            estimate = predict.solve_for_x(line, capacity_gib)
            if estimate is not None:
                out.update(value=int(estimate.value), basis="predicted", fit=out["fit"] + f", solved for {cap_text}")
                if estimate.low is not None:
                    out.update(low=max(int(estimate.low), 0), high=int(estimate.high))
    if analysis.get("first_oom_batch"):
        # measured beats predicted: the fit's figure stays beside it as the check of the method
        out.update(predicted=out["value"], predicted_low=out["low"], predicted_high=out["high"],
                   value=analysis["found_max_batch"], low=analysis["found_max_batch"],
                   high=analysis["first_oom_batch"] - 1, basis="measured", first_oom=analysis["first_oom_batch"],
                   interval_note="", confirm=f"measured in this run: {analysis['found_max_batch']} fits, "
                                             f"{analysis['first_oom_batch']} is out of memory ({cap_text})")
    else:
        out["confirm"] = (f"a batch sweep to the first out-of-memory (validate.batchsweep.max_batch >= "
                          f"{int(out['high'] or out['value'] or 0) + 1})" if out["value"] else
                          "a batch sweep with a memory capacity (a GPU, or validate.batchsweep.memory_cap_gib on CPU)")
        failed = next((r for r in bs["rows"] if r["variant"] == variant and r["status"] == "error"), None)
        if failed:  # the ladder ended on a failure, not a memory limit: the reader must not take it for one
            out["confirm"] = (f"{out['confirm']}; this run's sweep ended at batch {failed['batch_size']:,} on an error "
                              f"that is not a memory limit ({(failed.get('error') or '').split('!')[0][:120]})")
    if out["value"] is None and analysis.get("found_max_batch"):
        out.update(value=analysis["found_max_batch"], basis="measured")
    if out["value"] is None:
        out["reason"] = "fewer than two batch sizes fitted, or no memory capacity to solve for"
    return out


def samples_per_s_at(doc: dict, n_samples: int) -> dict:
    """Training samples/s on ``n_samples`` from the datascale line (time = a·N + b), extrapolated."""
    out = {"id": f"datascale.samples_per_s@{n_samples}", "what": f"samples/s at {format_quantity(n_samples, 'samples')}",
           "unit": "samples/s", "value": None, "low": None, "high": None,
           "confirm": f"mmscale validate 'validate.datascale.sizes=[{n_samples}]' 'validate.sections=[\"datascale\"]' "
                      f"(needs a dataset of {n_samples:,} samples)"}
    ds = _ok(doc["sections"], "datascale")
    if not ds or len({r["n_samples"] for r in ds.get("rows", [])}) < 2:
        out["reason"] = not_run(doc, "datascale") or "datascale needs two or more dataset sizes to fit a line"
        return out
    rows = ds["rows"]
    epochs = (ds.get("summary") or {}).get("epochs") or 1
    line = predict.line_with_interval([r["n_samples"] for r in rows], [r["train_wall_s"] for r in rows])
    time_s = predict.predict(line, n_samples)
    estimate = predict.ratio_interval(n_samples * epochs, time_s)
    top = max(r["n_samples"] for r in rows)
    fit = (f"training time = {line.slope * 1e3:.3g} s per 1k samples + {line.intercept:.3g} s "
           f"(R² {line.r2:.3f}, {line.n_points} runs up to N={top:,}; {n_samples / top:.0f}x beyond)")
    if line.residual_sd is not None and line.r2 < thresholds.DATASCALE_FIT_R2:
        # the sizes' times do not lie on a line (a busy machine, a cache that filled): a point figure
        # extrapolated from it would read better than the evidence
        largest = max(rows, key=lambda r: r["n_samples"])
        out.update(fit=fit, reason=f"the time fit is weak (R² {line.r2:.2f} < {thresholds.DATASCALE_FIT_R2:g}); "
                                   f"measured {largest['n_samples'] * epochs / largest['train_wall_s']:.3g} samples/s "
                                   f"at N={top:,}")
        return out
    out.update(value=estimate.value, low=estimate.low, high=estimate.high, basis="predicted", fit=fit)
    if line.residual_sd is None:
        out["interval_note"] = "two sizes: the line passes through both, no interval (a third size gives one)"
    elif estimate.high is None and estimate.low is not None:
        out["interval_note"] = "the interval's upper end is open: the time band reaches zero"
    return out


def scaling_strategies(doc: dict) -> list[str]:
    """Strategies with a multi-rank weak-scaling row, the most efficient first (one prediction each)."""
    rows = [r for r in ((doc["sections"].get("scaling") or {}).get("rows") or [])
            if r.get("regime") == "weak" and r.get("world_size", 1) > 1]
    best = {}
    for r in rows:
        best[r["strategy"]] = max(best.get(r["strategy"], 0.0), r.get("efficiency") or 0.0)
    return sorted(best, key=lambda name: -best[name]) or [None]


def scaling_at(doc: dict, strategy: str | None, world: int = SCALING_TARGET_WORLD) -> dict:
    """Weak-scaling efficiency of ``strategy`` at ``world`` ranks, from the exposed communication its
    largest measured world showed, grown by the ring factor."""
    out = {"id": None, "what": f"scaling efficiency at {world} GPUs", "unit": "", "value": None, "low": None,
           "high": None, "confirm": f"mmscale bench scaling on a {world}-GPU host (validate.scaling.max_world={world})"}
    sc = _ok(doc["sections"], "scaling")
    rows = [r for r in (sc or {}).get("rows", []) if r.get("regime") == "weak" and r["strategy"] == strategy]
    multi = [r for r in rows if r["world_size"] > 1 and r.get("nosync_step_ms") and r.get("step_ms")]
    if not multi:
        out["reason"] = not_run(doc, "scaling") or "no multi-rank weak-scaling row with a no-sync step time"
        return out
    out.update(id=f"scaling.{strategy}.weak.efficiency@x{world}",
               what=f"{strategy} weak-scaling efficiency at {world} ranks")
    measured = next((r for r in rows if r["world_size"] == world and r.get("efficiency") is not None), None)
    if measured:
        out.update(value=measured["efficiency"], basis="measured", confirm="measured in this run")
        return out
    largest = max(multi, key=lambda r: r["world_size"])
    one = next((r for r in rows if r["world_size"] == 1), None)
    if one is None:
        out["reason"] = "no one-rank row to compare against"
        return out
    times = sorted(largest.get("step_ms_values") or [largest["step_ms"]])
    quartiles = (times[len(times) // 4], times[(3 * len(times)) // 4])

    def at(step_ms: float) -> float:
        return predict.efficiency_at(one["step_ms"], largest["nosync_step_ms"], step_ms - largest["nosync_step_ms"],
                                     largest["world_size"], world)

    comm_share = (largest["step_ms"] - largest["nosync_step_ms"]) / largest["step_ms"]
    growth = predict.ring_factor(world) / predict.ring_factor(largest["world_size"])
    out.update(value=at(largest["step_ms"]), low=at(quartiles[1]), high=at(quartiles[0]), basis="predicted",
               fit=f"step = {largest['nosync_step_ms']:.1f} ms without gradient sync + exposed communication "
                   f"{100 * comm_share:.0f}% at x{largest['world_size']} grown by ring bus bytes 2(n-1)/n "
                   f"(x{growth:.2f}); interval from the step times' quartiles; assumes one NVLink domain")
    if largest.get("device") == "cpu":
        out["what"] += " (from a CPU gloo smoke test: shows the method, says nothing about GPUs)"
    return out


def not_run(doc: dict, name: str) -> str | None:
    """Why section ``name`` has no figures ('the scaling section was not run: ...'), None when it has."""
    section = doc["sections"].get(name) or {}
    if section.get("status") == "ok":
        return None
    return f"the {name} section {STATUS_WORDS.get(section.get('status'), 'was not in this run')}" + (
        f": {section['reason']}" if section.get("reason") else "")


def _guarded(what: str, compute, *args) -> dict:
    """One item of the answer; rows from an older or partial run that it cannot read make that item say
    so instead of taking the whole answer (and the report) down."""
    try:
        return compute(*args)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        return {"id": None, "what": what, "unit": "", "value": None, "low": None, "high": None,
                "reason": f"could not be read from these results ({type(exc).__name__}: {exc})"}


def answer(doc: dict) -> dict:
    """Everything the top of the report says, from the results dict alone."""
    predictions = ([_guarded("max batch", max_batch, doc)]
                   + [_guarded(f"samples/s at {n:,}", samples_per_s_at, doc, n) for n in DATASCALE_TARGETS]
                   + [_guarded("scaling efficiency", scaling_at, doc, name) for name in scaling_strategies(doc)])
    found = _guarded("changes", changes, doc, thresholds.MEANINGFUL_GAIN_REL)
    out = {"throughput": _guarded("throughput", throughput, doc), "bottleneck": _guarded("bottleneck", bottleneck, doc),
           "predictions": predictions, "changes": found if isinstance(found, list) else [],
           "flags": find_flags(doc)}
    out["lines"] = answer_lines(out)
    return out
