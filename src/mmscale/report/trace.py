"""A Chrome/Perfetto trace of the run from results.json: sections on one track, the pipeline's mean step on another.

The JSON object format (``traceEvents`` with complete ``"ph": "X"`` events, times in µs) opens in
ui.perfetto.dev and chrome://tracing. It is built from result rows only: the section wall times in
run order, and the pipeline's stage breakdown laid end to end (the stages tile the step by
construction, see ``bench.pipeline.stages``). The torch profiler's own trace, when the pipeline
wrote one, is linked beside it.
"""

from __future__ import annotations

TRACE_NAME = "pipeline.trace.json"


def _event(name: str, start_us: float, dur_us: float, pid: int, args: dict | None = None) -> dict:
    return {"name": name, "ph": "X", "ts": round(start_us, 3), "dur": round(dur_us, 3), "pid": pid, "tid": 1,
            "args": args or {}}


def _process(pid: int, name: str) -> dict:
    return {"name": "process_name", "ph": "M", "pid": pid, "tid": 1, "args": {"name": name}}


def run_trace(doc: dict) -> dict:
    """Trace events of the run's sections (pid 1) and the pipeline's mean step (pid 2)."""
    events = [_process(1, "validate sections (wall time, in run order)")]
    t = 0.0
    for name, section in doc.get("sections", {}).items():
        if section.get("wall_s"):
            events.append(_event(section.get("title", name), t, section["wall_s"] * 1e6, 1,
                                 {"section": name, "status": section.get("status")}))
            t += section["wall_s"] * 1e6
    pipeline = doc.get("sections", {}).get("pipeline") or {}
    stages = next((tbl["rows"] for tbl in pipeline.get("tables", []) if tbl["title"].startswith("Stage breakdown")), [])
    if stages:
        events.append(_process(2, "pipeline: mean training step, stage by stage"))
        t = 0.0
        for row in stages:
            ms = row.get("ms") or 0.0
            events.append(_event(row["stage"], t, ms * 1e3, 2, {"ms": ms, "share": row.get("share")}))
            t += ms * 1e3
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"created_utc": doc.get("created_utc"), "preset": doc.get("preset")}}
