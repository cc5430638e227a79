"""The servers one ``mmscale bench serve`` run starts, as command lines: the main batched server, the
naive one, the overload servers, each ``--variants`` entry, and the LitServe peer."""

from __future__ import annotations

import sys
from typing import NamedTuple

from mmscale.bench.serving.config import ServeBenchConfig
from mmscale.errors import ConfigError


class Variant(NamedTuple):
    frontends: int
    graphs: bool  # CUDA graphs on


def parse_variant(spec: str) -> Variant:
    """``f4`` -> (4 front ends, no graphs); ``f1+cg`` -> (1, graphs)."""
    name, *extras = spec.split("+")
    if not name.startswith("f") or not name[1:].isdigit() or int(name[1:]) < 1 or extras not in ([], ["cg"]):
        raise ConfigError("--variants", f"{spec!r} is not fN with optional +cg (N >= 1)")
    return Variant(int(name[1:]), extras == ["cg"])


def serve_args(cfg: ServeBenchConfig, server: str, frontends: int | None = None,
               cuda_graphs: bool | None = None) -> list[str]:
    """``mmscale serve`` arguments of one server; ``frontends`` / ``cuda_graphs`` override the main
    server's (a variant's)."""
    frontends = cfg.frontends if frontends is None else frontends
    cuda_graphs = cfg.cuda_graphs if cuda_graphs is None else cuda_graphs
    out = ["--server", server, "--device", cfg.device, "--max-batch", str(cfg.max_batch),
           "--max-wait-ms", str(cfg.max_wait_ms), "--max-queue", str(cfg.max_queue), "--slo-ms", str(cfg.slo_ms)]
    out += ["--checkpoint", cfg.checkpoint] if cfg.checkpoint else ["--preset", cfg.preset]
    if cfg.cpu_threads:
        out += ["--cpu-threads", str(cfg.cpu_threads)]
    if cfg.max_captions:
        out += ["--max-captions", str(cfg.max_captions)]
    if server == "batched":
        out += ["--frontends", str(frontends)] if frontends else []
        out += [] if cuda_graphs is None else ["--cuda-graphs" if cuda_graphs else "--no-cuda-graphs"]
    for override in cfg.server_set:
        out += ["--set", override]
    return out


def overload_bounds(cfg: ServeBenchConfig, max_queue: int | None = None) -> list[str]:
    """The admission flags of one overload server (empty: overload the main server as swept).
    They follow the main server's flags, so they win over its ``--max-queue``."""
    out = []
    if cfg.overload_slo_ms is not None:
        out += ["--slo-ms", str(cfg.overload_slo_ms)]
    if max_queue is not None:
        out += ["--max-queue", str(max_queue)]
    return out


def overload_counts(cfg: ServeBenchConfig) -> list[int | None]:
    """``overload_max_queue`` as a list: one fresh overload server per count (``[None]``: no count)."""
    text = cfg.overload_max_queue
    return [int(x) for x in str(text).split(",")] if text not in (None, "") else [None]


def litserve_command(cfg: ServeBenchConfig) -> list[str]:
    """The LitServe peer (``mmscale.bench.serving.litserve_peer``) with the main server's settings."""
    cmd = [sys.executable, "-m", "mmscale.bench.serving.litserve_peer", "--device", cfg.device,
           "--max-batch", str(cfg.max_batch), "--max-wait-ms", str(cfg.max_wait_ms),
           "--api-servers", str(cfg.frontends or 1), "--max-captions", str(cfg.max_captions or 16)]
    cmd += ["--checkpoint", cfg.checkpoint] if cfg.checkpoint else ["--preset", cfg.preset]
    cmd += ["--cuda-graphs"] if cfg.cuda_graphs else []
    cmd += ["--cpu-threads", str(cfg.cpu_threads)] if cfg.cpu_threads else []
    return cmd
