"""A run's monitor from start to brief: what every training, benchmark and server run shares.

``start_sampler`` and ``finish_sampler`` are the two ends every caller needs (0 = no monitor; the
timeline written, the summary cut to what a result keeps). A run then prints one line with the
range of the fields a slowdown is read against (SM clock, GPU temperature, power, host CPU, the
main thread's wait for a core) and where the full timeline is, so the hardware can be checked
without opening the file. It lives here, not beside a caller, because ``train/``, ``serve/`` and
the benchmarks must not import each other.
"""

from __future__ import annotations

from pathlib import Path

from mmscale.monitor import HardwareMonitor
from mmscale.monitor.timeline import Timeline, read_rows

# (field, label, unit) in the order the line shows them; a field without samples is left out
LINE_FIELDS = (("gpu0_sm_clock_mhz", "SM clock", " MHz"), ("gpu0_temp_c", "GPU", " C"),
               ("gpu0_power_w", "power", " W"), ("sys_cpu_pct", "host CPU", "%"),
               ("main_thread_wait_pct", "main thread waiting for a core", "%"))


def start_sampler(interval_s: float):
    """A started ``HardwareMonitor`` (a forked sampler process) for this process, or None with
    ``interval_s`` 0."""
    if interval_s <= 0:
        return None
    return HardwareMonitor(interval_s=interval_s).start()


def finish_sampler(monitor, path: str | Path) -> dict:
    """Stop ``monitor``, write its rows and marks to ``path``; its brief summary (empty without a
    monitor)."""
    if monitor is None:
        return {}
    monitor.stop()
    return brief_summary(monitor, monitor.write_jsonl(Path(path)))


def _ranges(stats: dict[str, dict]) -> dict[str, dict]:
    return {name: {k: s[k] for k in ("mean", "min", "max")} for name, s in stats.items() if name != "t_s"}


def brief_summary(monitor, path: str | Path) -> dict:
    """A stopped ``HardwareMonitor``'s summary cut to what a result keeps: sample count, achieved
    rate, GPU count (and why none), the sampler's own cost, and mean/min/max of every field over
    every sample. ``path`` is where its timeline was written."""
    summary = monitor.summary()
    return {"file": str(path), "samples": summary["n_samples"], "achieved_hz": summary["achieved_hz"],
            "gpu_count": summary["gpu_count"], "gpu_note": summary["gpu_note"],
            "sampler_duty_pct": summary["sampler_duty_pct"], "fields": _ranges(summary["fields"])}


def monitor_line(brief: dict) -> str:
    """One line of a brief summary (``brief_summary``'s shape: ``samples``, ``fields``, ``file``)."""
    fields = brief["fields"]
    parts = [f"hardware: {brief['samples']} samples"]
    for key, label, unit in LINE_FIELDS:
        stats = fields.get(key)
        if stats and stats["min"] is not None:
            parts.append(f"{label} {stats['min']:.0f}-{stats['max']:.0f}{unit}")
    return ", ".join(parts) + f" ({brief['file']})"


def summarize_file(path: str | Path) -> dict:
    """A brief summary (``brief_summary``'s shape) of a timeline file another process wrote, such
    as a spawned server's ``--monitor`` file: sample count, achieved rate, and mean/min/max of
    every numeric field; empty when the file is missing or holds no sample."""
    if not Path(path).is_file():
        return {}
    timeline, first_t, last_t = Timeline(), None, None
    for row in read_rows(path):
        timeline.add(row)
        first_t = row["t_s"] if first_t is None else first_t
        last_t = row["t_s"]
    if not timeline.n_samples:
        return {}
    span_s = last_t - first_t
    fields = _ranges(timeline.summary())
    return {"file": str(path), "samples": timeline.n_samples,
            "achieved_hz": (timeline.n_samples - 1) / span_s if span_s > 0 else None,
            "gpu_count": sum(1 for name in fields if name.endswith("_util_pct")), "fields": fields}
