"""The monitor's one-line summary, shared by ``mmscale train`` and ``mmscale serve --monitor``."""

from __future__ import annotations

import time

from mmscale.monitor import HardwareMonitor
from mmscale.monitor.brief import brief_summary, monitor_line


def test_monitor_line_reads_gpu_fields_when_present():
    stats = {"gpu0_sm_clock_mhz": {"min": 1500.0, "max": 1980.0, "mean": 1900.0},
             "gpu0_temp_c": {"min": 40.0, "max": 71.0, "mean": 60.0},
             "sys_cpu_pct": {"min": 5.0, "max": 93.0, "mean": 50.0}}
    line = monitor_line({"samples": 12, "fields": stats, "file": "runs/x/monitor.jsonl"})
    assert line == ("hardware: 12 samples, SM clock 1500-1980 MHz, GPU 40-71 C, host CPU 5-93% "
                    "(runs/x/monitor.jsonl)")


def test_monitor_line_leaves_out_fields_never_sampled():
    stats = {"gpu0_power_w": {"min": None, "max": None, "mean": None}}
    assert monitor_line({"samples": 0, "fields": stats, "file": "t.jsonl"}) == "hardware: 0 samples (t.jsonl)"


def test_brief_summary_of_a_real_monitor_keeps_every_field_but_time():
    with HardwareMonitor(interval_s=0.02, use_nvml=False, process=False) as mon:
        time.sleep(0.15)
    brief = brief_summary(mon, "out/monitor.jsonl")
    assert brief["file"] == "out/monitor.jsonl" and brief["samples"] == mon.summary()["n_samples"] >= 3
    assert "t_s" not in brief["fields"] and brief["gpu_count"] == 0
    rss = brief["fields"]["rss_gib"]
    assert set(rss) == {"mean", "min", "max"} and 0 < rss["min"] <= rss["mean"] <= rss["max"]
    assert monitor_line(brief).startswith(f"hardware: {brief['samples']} samples, host CPU ")
