"""The hardware monitor beside a server: ``mmscale serve --monitor FILE``.

Latency that rises while the offered load stays the same (GPU clocks falling under heat, front
ends saturating the host CPU, another job on the GPU) is invisible in ``/metrics``. The monitor
samples this process with its front ends, the host and every GPU, and appends each sample to FILE
as one JSON line as soon as it is taken, so the file can be read while the server runs and a load
benchmark's windows set against it. It samples in a forked process, as beside training: on a
thread it would wait for the GIL that the event loop and the batcher hold. Its memory is bounded
(``Timeline``); the file is not, at about one line per sampling interval.
"""

from __future__ import annotations

from pathlib import Path

from mmscale.errors import ConfigError
from mmscale.monitor import HardwareMonitor
from mmscale.monitor.brief import brief_summary, monitor_line


def prepare_monitor_file(monitor_file: str | None) -> Path | None:
    """Create ``monitor_file`` (and its folder) empty, so that a second run does not append to
    the first one's timeline; None without a monitor. A path that cannot be written is refused
    naming the flag, before a model is loaded for nothing."""
    if monitor_file is None:
        return None
    if not monitor_file:
        raise ConfigError("serve --monitor", "must not be empty (leave it out for no monitor)")
    path = Path(monitor_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("w").close()
    except OSError as exc:
        raise ConfigError("serve --monitor", f"cannot write {path} ({exc.strerror or exc})") from None
    return path


def start_monitor(monitor_file: str | None, interval_s: float = 0.2):
    """A started ``HardwareMonitor`` streaming into ``monitor_file``, or None without one."""
    path = prepare_monitor_file(monitor_file)
    if path is None:
        return None

    return HardwareMonitor(interval_s=interval_s, stream_path=path).start()


def stop_monitor(monitor, monitor_file: str) -> str:
    """Stop the sampler process (its last sample and the file's close happen there) and return
    the one-line summary: sample count, SM clock, GPU temperature, power and host CPU ranges."""
    monitor.stop()
    return monitor_line(brief_summary(monitor, monitor_file))
