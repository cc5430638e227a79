"""The hardware monitor beside a training run: ``monitor.jsonl`` in the run folder.

A training step that slows while its data wait stays flat (clocks falling under heat, a host
thread starved of CPU, another job on the GPU) is invisible in the loss log. The monitor's
timeline, with a mark at every log step, lets the two be read side by side. Its figures are
summarised into the result (mean, min and max of each field over every sample, not only the
rows kept), and the rows themselves are bounded (``Timeline``): a day-long run does not grow the
file or the memory without limit.
"""

from __future__ import annotations

from pathlib import Path

from mmscale.monitor.brief import finish_sampler, start_sampler

MONITOR_FILE = "monitor.jsonl"


def start_monitor(interval_s: float, is_main: bool):
    """A started ``HardwareMonitor`` for this process, or None (``interval_s`` 0, not the first
    rank, or psutil missing)."""
    return start_sampler(interval_s) if is_main else None


def mark_step(monitor, step: int) -> None:
    if monitor is not None:
        monitor.mark(f"step={step}")


def finish_monitor(monitor, out_dir: Path) -> dict:
    """Stop ``monitor``, write its rows and marks to ``out_dir/monitor.jsonl``; its summary for
    the result (empty without a monitor)."""
    return finish_sampler(monitor, Path(out_dir) / MONITOR_FILE)
