"""NVML probe degradation (with a fake NVML) and the energy arithmetic."""

from __future__ import annotations

import time
import types

import pytest

from mmscale.monitor import energy, nvml
from mmscale.monitor.nvml import NvmlProbe


class NotSupported(Exception):
    pass


def fake_pynvml(gpm: bool, energy_counter: bool = True, watts: float | None = None):
    """A stand-in for pynvml with one GPU; GPM optional, energy counter optional. The counter adds
    70 J per reading, or with ``watts`` grows with time at that power, the power reading too (the
    energy in a span is then the same however often a busy machine let the sampler read it)."""
    state = {"energy_mj": 1_000_000}
    m = types.SimpleNamespace()
    m.NVML_TEMPERATURE_GPU, m.NVML_CLOCK_SM = 0, 1
    m.NVML_GPM_METRIC_SM_UTIL, m.NVML_GPM_METRIC_ANY_TENSOR_UTIL, m.NVML_GPM_METRIC_SM_OCCUPANCY = 2, 5, 3
    m.NVML_GPM_METRICS_GET_VERSION = 1
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=97)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=3 * 2**30)
    m.nvmlDeviceGetPowerUsage = lambda h: 350_000 if watts is None else int(watts * 1000)
    m.nvmlDeviceGetTemperature = lambda h, kind: 61

    def clock(h, kind):
        raise NotSupported("clock")

    m.nvmlDeviceGetClockInfo = clock

    def energy_mj(h):
        if not energy_counter:
            raise NotSupported("energy")
        if watts is not None:
            return int(watts * time.perf_counter() * 1000)
        state["energy_mj"] += 70_000  # 70 J between reads
        return state["energy_mj"]

    m.nvmlDeviceGetTotalEnergyConsumption = energy_mj

    def support(h):
        return types.SimpleNamespace(isSupportedDevice=1 if gpm else 0)

    m.nvmlGpmQueryDeviceSupport = support
    m.nvmlGpmSampleAlloc = lambda: object()
    m.nvmlGpmSampleGet = lambda h, s: s
    m.nvmlGpmSampleFree = lambda s: None

    class Metric:
        def __init__(self):
            self.metricId, self.nvmlReturn, self.value = 0, 0, 0.0

    class Query:
        def __init__(self):
            self.metrics = [Metric() for _ in range(8)]

    m.c_nvmlGpmMetricsGet_t = Query

    def metrics_get(q):
        values = {2: 41.0, 5: 12.5, 3: 30.0}
        for metric in q.metrics[: q.numMetrics]:
            metric.value = values[metric.metricId]
        return q

    m.nvmlGpmMetricsGet = metrics_get
    return m


def test_gpm_fields_when_supported(monkeypatch):
    monkeypatch.setattr(nvml, "_import_pynvml", lambda: fake_pynvml(gpm=True))
    probe = NvmlProbe()
    row = probe.read()
    assert row["gpu0_activity_source"] == "gpm"
    assert row["gpu0_sm_active_pct"] == 41.0 and row["gpu0_tensor_active_pct"] == 12.5
    assert row["gpu0_util_pct"] == 97.0 and row["gpu0_power_w"] == 350.0
    assert row["gpu0_mem_used_gib"] == pytest.approx(3.0)
    assert row["gpu0_sm_clock_mhz"] is None and "clock" in probe.unsupported  # degraded, not failed
    assert row["gpu0_energy_j"] == pytest.approx(70.0)
    assert probe.read()["gpu0_energy_j"] == pytest.approx(140.0)


def test_falls_back_to_nvml_util_without_gpm(monkeypatch):
    monkeypatch.setattr(nvml, "_import_pynvml", lambda: fake_pynvml(gpm=False))
    row = NvmlProbe().read()
    assert row["gpu0_activity_source"] == "nvml_util"
    assert row["gpu0_sm_active_pct"] is None and row["gpu0_util_pct"] == 97.0


def test_no_nvml_library(monkeypatch):
    monkeypatch.setattr(nvml, "_import_pynvml", lambda: None)
    probe = NvmlProbe()
    assert not probe.available and probe.read() == {} and "not installed" in probe.reason


def test_monitor_with_fake_gpu_reports_energy_per_sample(monkeypatch):
    import time

    from mmscale.monitor import HardwareMonitor

    monkeypatch.setattr(nvml, "_import_pynvml", lambda: fake_pynvml(gpm=True))
    with HardwareMonitor(interval_s=0.02) as mon:
        time.sleep(0.1)
    s = mon.summary()
    assert s["gpu_count"] == 1 and s["gpu_activity_source"] == "gpm"
    n = s["n_samples"]
    e = mon.energy_j()["gpu0"]
    assert e["source"] == "nvml_energy_counter"
    assert e["energy_j"] == pytest.approx(70.0 * (n - 1))  # first to last reading
    assert mon.joules_per_sample(7) == pytest.approx(70.0 * (n - 1) / 7)


def test_energy_from_power_when_no_counter():
    rows = [{"t_s": 0.0, "gpu0_power_w": 100.0}, {"t_s": 1.0, "gpu0_power_w": 300.0},
            {"t_s": 3.0, "gpu0_power_w": None}, {"t_s": 4.0, "gpu0_power_w": 300.0}]
    joules, source = energy.gpu_energy_j(rows, 0)
    assert source == "power_integral"
    assert joules == pytest.approx(200.0 + 900.0)  # (100+300)/2*1 + (300+300)/2*3
    assert energy.joules_per_item(joules, 11) == pytest.approx(100.0)
    assert energy.joules_per_item(None, 5) is None and energy.joules_per_item(5.0, 0) is None
    assert energy.integrate_power_j([0.0], [5.0]) is None


def test_energy_in_a_span_interpolates_the_counter_at_both_ends():
    rows = [{"t_s": 0.0, "gpu0_energy_j": 1000.0}, {"t_s": 1.0, "gpu0_energy_j": 1100.0},
            {"t_s": 2.0, "gpu0_energy_j": 1300.0}]
    joules, source = energy.gpu_energy_in_span_j(rows, 0, 0.5, 1.5)
    assert source == "nvml_energy_counter"
    assert joules == pytest.approx(1200.0 - 1050.0)


def test_energy_in_a_span_falls_back_to_mean_power_then_to_none():
    rows = [{"t_s": 0.0, "gpu0_power_w": 100.0}, {"t_s": 1.0, "gpu0_power_w": 300.0},
            {"t_s": 5.0, "gpu0_power_w": 900.0}]
    joules, source = energy.gpu_energy_in_span_j(rows, 0, 0.0, 2.0)  # samples at 0 and 1 s
    assert source == "power_mean" and joules == pytest.approx(200.0 * 2.0)
    assert energy.gpu_energy_in_span_j(rows, 0, 2.0, 4.0) == (None, "no GPU samples in the span")


def test_monitor_energy_in_span_uses_the_monotonic_clock(monkeypatch):
    from mmscale.monitor import HardwareMonitor

    monkeypatch.setattr(nvml, "_import_pynvml", lambda: fake_pynvml(gpm=False, watts=250.0))
    with HardwareMonitor(interval_s=0.02, process=False) as mon:
        time.sleep(0.05)
        start = time.monotonic()
        time.sleep(0.5)
        end = time.monotonic()
        time.sleep(0.05)
    joules = mon.energy_in_span_j(start, end)
    # 250 W over the span: off the counter interpolated at both ends, or (when a busy machine let
    # no sample bracket it) the mean power times the span; a sample's clock reading and its
    # counter reading may lie a few ms apart under load
    assert joules == pytest.approx(250.0 * (end - start), rel=0.1)
    assert mon.energy_in_span_j(end + 100.0, end + 101.0) is None  # no samples there


def test_monitor_without_gpu_has_no_span_energy(monkeypatch):
    from mmscale.monitor import HardwareMonitor

    monkeypatch.setattr(nvml, "_import_pynvml", lambda: None)
    with HardwareMonitor(interval_s=0.02, process=False) as mon:
        pass
    assert mon.energy_in_span_j(0.0, 1e12) is None
