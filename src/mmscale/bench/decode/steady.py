"""Steady-state figures of ``mmscale bench decode-auto``'s runs and the ratios between them, as pure
functions over each run's metrics rows and monitor samples."""

from __future__ import annotations

import json
from pathlib import Path

from mmscale.bench.decode.partners import PARTNERS

SAME_FRAC = 0.02  # fixed paths closer than this are a tie: either choice is right
STEADY_HARDWARE = ("main_thread_cpu_pct", "main_thread_wait_pct", "sys_cpu_pct", "gpu0_sm_clock_mhz",
                   "gpu0_power_w")


def steady(rows: list[dict], batch: int, after_step: int) -> dict:
    """samples/s and data-wait share over the logged windows that end after ``after_step``."""
    prev, steps, time_ms, wait_ms = 0, 0, 0.0, 0.0
    for row in rows:
        if "time/step_ms" not in row:
            continue
        n = row["step"] - prev
        prev = row["step"]
        if row["step"] - n < after_step:
            continue
        steps += n
        time_ms += n * row["time/step_ms"]
        wait_ms += n * row["time/data_wait_ms"]
    if not time_ms:
        return {"steady_steps": 0, "steady_samples_per_s": None, "steady_data_wait_pct": None}
    return {"steady_steps": steps, "steady_samples_per_s": 1e3 * steps * batch / time_ms,
            "steady_data_wait_pct": 100 * wait_ms / time_ms}


def steady_hardware(monitor_file: Path, after_step: int) -> dict:
    """Mean of each ``STEADY_HARDWARE`` field over the monitor's samples after the ``step=after_step``
    mark: the hardware behind the steady samples/s, without the compile and warm-up before it.
    ``main_thread_wait_pct`` is the share of time the training thread was ready to run but had no
    core: high there, with the step slower than its synthetic partner's, is a starved loop thread."""
    if not monitor_file.is_file():
        return {}
    rows = [json.loads(line) for line in open(monitor_file)]
    # by time, not by position: the marks may be written after the samples they fall between
    start = next((row["t_s"] for row in rows if row.get("mark") == f"step={after_step}"), None)
    if start is None:
        return {}
    sums, counts = {}, {}
    for row in rows:
        if "mark" in row or row.get("t_s", -1.0) < start:
            continue
        for key in STEADY_HARDWARE:
            if isinstance(row.get(key), (int, float)):
                sums[key] = sums.get(key, 0.0) + row[key]
                counts[key] = counts.get(key, 0) + 1
    return {f"steady_{key}": sums[key] / counts[key] for key in sums}


def ratios(rows: dict) -> dict:
    """auto over the faster fixed path (whole run and steady state), and whether auto kept it."""
    fixed = [rows[p] for p in ("cpu", "gpu") if not rows[p].get("skipped")]
    auto = rows["auto"]
    out = {}
    for key in ("samples_per_s", "steady_samples_per_s"):
        best = max(fixed, key=lambda r: r[key] or 0.0)
        out[f"auto_vs_faster_fixed_{key}"] = auto[key] / best[key] if best[key] and auto[key] else None
    best = max(fixed, key=lambda r: r["steady_samples_per_s"] or 0.0)
    other = [r for r in fixed if r is not best]
    gap = (best["steady_samples_per_s"] / other[0]["steady_samples_per_s"] - 1) if other and other[0][
        "steady_samples_per_s"] else None
    same = rows.get(auto["kept"], {})
    # the same input path run alone: separates the probe's cost and run-to-run drift from the choice
    out["auto_vs_fixed_same_path_steady"] = (auto["steady_samples_per_s"] / same["steady_samples_per_s"]
                                             if same.get("steady_samples_per_s") and auto["steady_samples_per_s"]
                                             else None)
    out["faster_fixed_path"] = best["path"]
    out["fixed_gap_frac"] = gap
    out["auto_kept"] = auto["kept"]
    out["auto_kept_the_faster"] = auto["kept"] == best["path"] or (gap is not None and gap < SAME_FRAC)
    return out


def partner_ratios(rows: dict) -> dict:
    """Each from-files run's steady samples/s over its synthetic partner's (target >= 0.95)."""
    out = {}
    for path, partner in PARTNERS.items():
        files, synthetic = rows.get(path, {}), rows.get(partner, {})
        if files.get("steady_samples_per_s") and synthetic.get("steady_samples_per_s"):
            out[f"{path}_vs_{partner}_steady"] = files["steady_samples_per_s"] / synthetic["steady_samples_per_s"]
    return out


def monitor_overhead(rows: dict) -> dict:
    """The training step's cost of the hardware monitor: steady samples/s with it off over with it
    on (``synthetic_no_monitor`` over ``synthetic``), as a percentage of the step (target < 1%)."""
    on, off = rows.get("synthetic", {}), rows.get("synthetic_no_monitor", {})
    if not (on.get("steady_samples_per_s") and off.get("steady_samples_per_s")):
        return {}
    return {"monitor_overhead_pct": 100 * (off["steady_samples_per_s"] / on["steady_samples_per_s"] - 1),
            "monitor_samples": (on.get("monitor") or {}).get("samples"),
            "monitor_achieved_hz": (on.get("monitor") or {}).get("achieved_hz")}
