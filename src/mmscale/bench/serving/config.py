"""The settings of one ``mmscale bench serve`` run. The fields keep the names of the command's flags:
the run writes them, as given, under ``args`` in serve_load.json."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeBenchConfig:
    preset: str = "base"
    checkpoint: str | None = None  # a trained checkpoint instead of the preset's random weights
    device: str = "auto"
    frontends: int | None = None  # HTTP front-end processes of the main batched server (None: the server's choice)
    cuda_graphs: bool | None = None  # CUDA graphs in the main batched server (None: the server's choice)
    slo_ms: float = 100.0  # the servers' admission bound in expected wait (0: count bound only)
    litserve: bool = False  # also the LitServe peer and our main server, both fed JSON bodies
    concurrency: str = "1,2,4,8,16,32,64,128,256"  # closed-loop levels of the main batched server
    naive_concurrency: str = "1,16,256"  # closed-loop levels of the naive server
    max_batch: int | None = None  # every server's largest batch (None: the server's choice for the host)
    max_wait_ms: float | None = None  # every server's wait for a batch to fill (None: the server's choice)
    max_queue: int = 4096
    window_s: float = 5.0
    max_windows: int = 4
    max_requests: int = 100_000
    processes: int = 8  # load-generator processes
    overload_s: float = 60.0  # open loop at 2x the measured capacity for this long (0 skips it)
    slo: str = "p99=100ms"  # the load rows' objective: goodput counts answers within it
    dataset: str | None = None  # dataset dir for real JPEGs (None: generated 320x240 JPEGs)
    cpu_smoke: bool = False  # tiny model, CPU, seconds-long run (the fields of SMOKE_DEFAULTS)
    out: str = "runs/serve_load"


# ``cpu_smoke``'s settings: fields given explicitly still win. Besides these, a smoke run's servers
# use one CPU thread and its offline forward is small (``servers.model_args``, ``offline.SMOKE_OFFLINE_BATCH``).
SMOKE_DEFAULTS = dict(preset="tiny", device="cpu", concurrency="1,4", naive_concurrency="1,4",
                      max_batch=16, window_s=1.0, max_windows=3, processes=1, overload_s=2.0, slo="p99=5s")


def smoke_config(**given) -> ServeBenchConfig:
    """``ServeBenchConfig`` from the fields ``given``, the smoke settings under them when ``cpu_smoke``."""
    return ServeBenchConfig(**{**(SMOKE_DEFAULTS if given.get("cpu_smoke") else {}), **given})


def levels(text: str) -> list[int]:
    """``"1,16,256"`` -> ``[1, 16, 256]``."""
    return [int(x) for x in text.split(",") if x]
