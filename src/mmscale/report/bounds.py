"""Physical bounds every figure must respect; one outside them is flagged, never shown plain.

A process cannot use more CPU than cores x 100%, hold more memory than the host or the device has,
be more than 100% utilized, or train faster than the ceiling the same run measured. A figure past
such a bound is a measurement or accounting error (a sampler summing children twice, a stale
counter), and the report says so next to it instead of presenting it as a result.

``check(quantity, value, bounds, row)`` is the one rule set; ``find_flags(doc)`` applies it to every
summary, table and row of a results document (the report and its test both use it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mmscale.bench.thresholds import CEILING_TOLERANCE_REL

SAMPLED_SHARE_JITTER_REL = 0.05  # psutil/NVML shares over 0.2-0.5 s intervals: seen at 101% of their bound

GIB = 2**30
STAT_COLUMNS = ("mean", "min", "max", "p50", "p90", "p99", "median")  # a row's "field" names their quantity


@dataclass(frozen=True)
class Bounds:
    cores: int | None
    host_gib: float | None
    device_gib: float | None
    ceilings: tuple = ()  # (scope, quantity, ceiling value, what measured it)


def bounds_of(doc: dict) -> Bounds:
    env = doc.get("environment") or {}
    gpus = env.get("gpus") or []
    device = max((g.get("total_memory_gib") or 0 for g in gpus), default=0) or None
    return Bounds(env.get("cpu_count_usable") or env.get("cpu_count"), env.get("host_memory_gib"), device,
                  tuple(ceilings(doc.get("sections") or {})))


def ceilings(sections: dict) -> list[tuple[str, str, float, str]]:
    """Throughput ceilings the run measured, each with the one place it bounds (``scope``: a section
    and where in it, or ``answer``): decode-only images/s bounds the data loaders beside it; the step on
    device-resident batches bounds the pipeline's main run and the answer's training throughput."""
    out = []
    data = sections.get("data") or {}
    decode = next((r.get("img_per_s") for r in data.get("rows", []) if r.get("variant") == "decode_only"), None)
    if decode:
        out.append(("data.rows", "img_per_s", decode, "the decode-only ceiling measured beside it"))
    pipeline = (sections.get("pipeline") or {}).get("summary") or {}
    if pipeline.get("synthetic_samples_per_s"):
        what = "the same step on device-resident batches (pipeline)"
        # the datascale loop trains the same step with data loading added: it cannot beat it either
        out += [(where, "samples_per_s", pipeline["synthetic_samples_per_s"], what)
                for where in ("pipeline.summary", "datascale.rows", "answer")]
    return out


def _memory_limit(name: str, bounds: Bounds, row: dict) -> tuple[float | None, str]:
    """(limit in GiB, what it is) for a memory quantity, by whether it is host or device memory."""
    device_memory = name.startswith("gpu") or "gpu" in name or (
        name == "peak_bytes" and row.get("memory_kind") == "gpu_allocated") or (
        name == "peak_mem_gib" and row.get("device") == "cuda")
    if device_memory:
        return bounds.device_gib, "the device's memory"
    return bounds.host_gib, "the host's memory"


def check(quantity: str, value, bounds: Bounds, row: dict | None = None, scope: str = "") -> str | None:
    """Why ``value`` of ``quantity`` is outside its physical bounds here, or None when it is within them.

    ``scope`` (``"data.rows"``, ``"pipeline.summary"``, ``"answer"``) says where the figure stands, for
    the ceilings that bound only the figures measured beside them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    name, row = quantity.lower(), row or {}
    if name.endswith("_pct") or name == "pct":
        if value < 0:
            return "a share below 0%"
        total_cpu = name in ("cpu_pct", "client_cpu_total_pct", "client_cpu_max_pct")
        # a share sampled over a short interval reads a few % over its bound from timer jitter alone
        if total_cpu and bounds.cores and value > 100 * bounds.cores * (1 + SAMPLED_SHARE_JITTER_REL):
            return f"above {bounds.cores} cores x 100% = {100 * bounds.cores}%"
        if not total_cpu and value > 100 * (1 + SAMPLED_SHARE_JITTER_REL):
            return "a utilization or share above 100%"
    elif name.endswith("_frac") or name == "share":
        if not 0 <= value <= 1:
            return "a share outside 0-100%"
    elif name.endswith("_gib") or name == "peak_bytes":
        gib = value / GIB if name.endswith("bytes") else value
        limit, what = _memory_limit(name, bounds, row)
        if limit and gib > limit * 1.01:  # 1%: the environment rounds capacities to 0.01 GiB
            return f"more than {what} ({limit:.1f} GiB)"
        if gib < 0 and "delta" not in name and "growth" not in name:
            return "negative memory"
    for where, ceiling_name, ceiling, what in bounds.ceilings:
        if (where == scope and name == ceiling_name and value > ceiling * (1 + CEILING_TOLERANCE_REL)
                and row.get("variant") != "decode_only"):
            return f"above its ceiling, {what} ({ceiling:,.3g}/s): one of the two measurements is disturbed"
    return None


def _row_flags(section: str, where: str, row: dict, bounds: Bounds) -> list[dict]:
    out = []
    for column, value in row.items():
        quantity = row["field"] if column in STAT_COLUMNS and isinstance(row.get("field"), str) else column
        reason = check(quantity, value, bounds, row, scope_of(section, where))
        if reason:
            out.append({"section": section, "where": where, "column": column, "quantity": quantity,
                        "value": value, "reason": reason})
    return out


def find_flags(doc: dict) -> list[dict]:
    """Every figure of the document that is outside its physical bounds, with where it is and why."""
    bounds = bounds_of(doc)
    flags = []
    for name, section in (doc.get("sections") or {}).items():
        flags += _row_flags(name, "summary", section.get("summary") or {}, bounds)
        for table in section.get("tables") or []:
            for row in table["rows"]:
                flags += _row_flags(name, table["title"], row, bounds)
        for row in section.get("rows") or []:
            flags += _row_flags(name, "Measurements", row, bounds)
    return flags


def scope_of(section: str, where: str) -> str:
    """``data.rows``, ``pipeline.summary``, ``monitor.Field statistics ...``: where a figure stands."""
    return f"{section}.{'rows' if where == 'Measurements' else where}"
