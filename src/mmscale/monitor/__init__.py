"""Background hardware sampling (NVML per GPU, psutil for the host) for every run."""

from mmscale.monitor.energy import gpu_energy_j, integrate_power_j, joules_per_item
from mmscale.monitor.sampler import HardwareMonitor
from mmscale.monitor.timeline import Timeline

__all__ = ["HardwareMonitor", "Timeline", "gpu_energy_j", "integrate_power_j", "joules_per_item"]
