"""The bottleneck analyzer's figures held to the targets of the GPU presets: the stages add up to the
wall-clock step (within 5%), data wait under 5% of the step, training from files at >= 95% of
synthetic device batches, and the hardware monitor's overhead (< 1% of the step) and rate."""

from __future__ import annotations

STAGE_SUM_TOLERANCE = 0.05
MAX_DATA_WAIT_SHARE = 0.05
MIN_FILES_VS_SYNTHETIC = 0.95
MAX_MONITOR_OVERHEAD_PCT = 1.0
MIN_MONITOR_HZ = 5 * 0.95  # the default 0.2 s interval, with 5% of sampling jitter


def target_checks(result: dict) -> list[dict]:
    """One ``{"check", "value", "met"}`` per target from ``bench_pipeline(...).as_dict()``; ``met`` is
    None where the run did not measure it (the monitor overhead needs the ``monitor_overhead`` group)."""
    stages = result["stages"]
    data_wait = stages["shares"]["data_wait"]
    over = next((r["extra"].get("overhead_pct") for r in result["variants"] if r["variant"] == "monitor_on"), None)
    hz = result["monitor"]["achieved_hz"] or 0
    checks = [
        ("stage sum vs wall-clock step", f"{100 * abs(stages['unattributed_frac']):.2f}% apart",
         abs(stages["unattributed_frac"]) <= STAGE_SUM_TOLERANCE),
        ("data wait share of the step", f"{100 * data_wait:.1f}%", data_wait < MAX_DATA_WAIT_SHARE),
        ("from files vs synthetic batches", f"{100 * result['from_files_vs_synthetic']:.1f}%",
         result["from_files_vs_synthetic"] >= MIN_FILES_VS_SYNTHETIC),
        ("monitor overhead", "-" if over is None else f"{over:+.2f}%",
         None if over is None else over < MAX_MONITOR_OVERHEAD_PCT),
        ("monitor rate", f"{hz:.1f} Hz", hz >= MIN_MONITOR_HZ),
    ]
    return [{"check": check, "value": value, "met": met} for check, value, met in checks]


def format_checks(checks: list[dict]) -> str:
    lines = [f"{'target':<34} {'measured':>14}  met"]
    for c in checks:
        met = "-" if c["met"] is None else ("yes" if c["met"] else "NO")
        lines.append(f"{c['check']:<34} {c['value']:>14}  {met}")
    return "\n".join(lines)
