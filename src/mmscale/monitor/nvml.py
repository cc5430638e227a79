"""Per-GPU readings through NVML (``nvidia-ml-py``), with GPM SM/tensor activity where supported.

NVML's ``utilization.gpu`` is the share of time *any* kernel was running, however few SMs it
used: on an H100 a host-bound eager step (base model, batch 2) read 16% utilization while GPM saw
7% SM activity and 0.5% tensor activity; at batch 128, 89% vs 74% and 23% (BENCHMARKS.md,
"Cross-checks"). GPM (Hopper and newer) samples how busy the SMs and the tensor cores really were, so each row says which was measured in
``gpu{i}_activity_source`` ("gpm" or "nvml_util"). A query the device does not support is
dropped after its first failure instead of failing every sample.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
GIB = 2**30


def _import_pynvml():
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


class GpmActivity:
    """SM and tensor-core activity over the interval between two GPM samples of one GPU."""

    def __init__(self, nvml, handle):
        self.nvml, self.handle = nvml, handle
        support = nvml.nvmlGpmQueryDeviceSupport(handle)
        if not support.isSupportedDevice:
            raise RuntimeError("GPM not supported on this device")
        self.prev = nvml.nvmlGpmSampleGet(handle, nvml.nvmlGpmSampleAlloc())
        self.next = nvml.nvmlGpmSampleAlloc()

    def read(self) -> dict:
        nvml = self.nvml
        nvml.nvmlGpmSampleGet(self.handle, self.next)
        query = nvml.c_nvmlGpmMetricsGet_t()
        query.version = nvml.NVML_GPM_METRICS_GET_VERSION
        query.sample1, query.sample2 = self.prev, self.next
        wanted = {
            nvml.NVML_GPM_METRIC_SM_UTIL: "sm_active_pct",
            nvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL: "tensor_active_pct",
            nvml.NVML_GPM_METRIC_SM_OCCUPANCY: "sm_occupancy_pct",
        }
        query.numMetrics = len(wanted)
        for slot, metric_id in enumerate(wanted):
            query.metrics[slot].metricId = metric_id
        nvml.nvmlGpmMetricsGet(query)
        self.prev, self.next = self.next, self.prev  # the newer sample starts the next interval
        out = {}
        for slot, name in enumerate(wanted.values()):
            metric = query.metrics[slot]
            out[name] = float(metric.value) if metric.nvmlReturn == 0 else None
        return out

    def close(self) -> None:
        for sample in (self.prev, self.next):
            try:
                self.nvml.nvmlGpmSampleFree(sample)
            except Exception:  # freeing at shutdown: nothing useful to do on failure
                pass


class NvmlProbe:
    """Reads every visible GPU; ``available`` is False (and ``read`` returns {}) without NVML."""

    def __init__(self, use_gpm: bool = True):
        self.nvml = _import_pynvml()
        self.handles: list = []
        self.gpm: dict[int, GpmActivity] = {}
        self.unsupported: set[str] = set()
        self.energy_start_mj: dict[int, int] = {}
        self.reason = ""
        if self.nvml is None:
            self.reason = "nvidia-ml-py not installed"
            return
        try:
            self.nvml.nvmlInit()
            count = self.nvml.nvmlDeviceGetCount()
            self.handles = [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # no driver / no GPU: CPU fields only
            self.reason = f"NVML unavailable: {type(exc).__name__}: {exc}"
            self.handles = []
            return
        if not self.handles:
            self.reason = "NVML found no GPU"
        for i, handle in enumerate(self.handles):
            if use_gpm:
                try:
                    self.gpm[i] = GpmActivity(self.nvml, handle)
                except Exception as exc:
                    log.debug("GPU %d: no GPM metrics (%s); using NVML utilization", i, exc)
            try:
                self.energy_start_mj[i] = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            except Exception:
                self.unsupported.add("energy")

    @property
    def available(self) -> bool:
        return bool(self.handles)

    def _query(self, key: str, fn):
        """One NVML call; a query that fails once is marked unsupported and skipped afterwards."""
        if key in self.unsupported:
            return None
        try:
            return fn()
        except Exception as exc:
            log.debug("NVML %s unsupported: %s", key, exc)
            self.unsupported.add(key)
            return None

    def read(self) -> dict:
        nvml, row = self.nvml, {}
        for i, h in enumerate(self.handles):
            p = f"gpu{i}_"
            util = self._query("util", lambda h=h: nvml.nvmlDeviceGetUtilizationRates(h))
            mem = self._query("mem", lambda h=h: nvml.nvmlDeviceGetMemoryInfo(h))
            power_mw = self._query("power", lambda h=h: nvml.nvmlDeviceGetPowerUsage(h))
            temp = self._query("temp", lambda h=h: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))
            sm_mhz = self._query("clock", lambda h=h: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))
            energy_mj = self._query("energy", lambda h=h: nvml.nvmlDeviceGetTotalEnergyConsumption(h))
            row[p + "util_pct"] = None if util is None else float(util.gpu)
            row[p + "mem_used_gib"] = None if mem is None else mem.used / GIB
            row[p + "power_w"] = None if power_mw is None else power_mw / 1000.0
            row[p + "temp_c"] = None if temp is None else float(temp)
            row[p + "sm_clock_mhz"] = None if sm_mhz is None else float(sm_mhz)
            start_mj = self.energy_start_mj.get(i)
            row[p + "energy_j"] = (
                None if energy_mj is None or start_mj is None else (energy_mj - start_mj) / 1000.0
            )
            activity = self._read_gpm(i)
            row[p + "sm_active_pct"] = activity.get("sm_active_pct")
            row[p + "tensor_active_pct"] = activity.get("tensor_active_pct")
            row[p + "activity_source"] = "gpm" if activity else "nvml_util"
        return row

    def _read_gpm(self, i: int) -> dict:
        gpm = self.gpm.get(i)
        if gpm is None:
            return {}
        try:
            return gpm.read()
        except Exception as exc:  # e.g. MIG or a driver that refuses mid-run: degrade, say so
            log.debug("GPU %d: GPM read failed (%s); falling back to NVML utilization", i, exc)
            gpm.close()
            del self.gpm[i]
            return {}

    def close(self) -> None:
        for gpm in self.gpm.values():
            gpm.close()
        self.gpm.clear()
        if self.handles:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
