"""The servers one ``mmscale bench serve`` run starts, as command lines: our batched server (the
one the overload run hits), the naive one, and the LitServe peer."""

from __future__ import annotations

import sys

from mmscale.bench.serving.config import ServeBenchConfig
from mmscale.serve.config import ServeConfig
from mmscale.serve.defaults import resolve


def model_args(cfg: ServeBenchConfig) -> list[str]:
    """The flags every server shares besides the batching: the model, and one CPU thread under ``cpu_smoke``."""
    out = ["--checkpoint", cfg.checkpoint] if cfg.checkpoint else ["--preset", cfg.preset]
    return out + (["--cpu-threads", "1"] if cfg.cpu_smoke else [])


def serve_args(cfg: ServeBenchConfig, server: str) -> list[str]:
    """``mmscale serve`` arguments of one server (``batched`` or ``naive``)."""
    out = ["--server", server, "--device", cfg.device, "--max-queue", str(cfg.max_queue), "--slo-ms", str(cfg.slo_ms)]
    out += ["--max-batch", str(cfg.max_batch)] if cfg.max_batch is not None else []
    out += ["--max-wait-ms", str(cfg.max_wait_ms)] if cfg.max_wait_ms is not None else []
    if server == "batched":
        out += ["--frontends", str(cfg.frontends)] if cfg.frontends else []
        out += [] if cfg.cuda_graphs is None else ["--cuda-graphs" if cfg.cuda_graphs else "--no-cuda-graphs"]
    return out + model_args(cfg)


def litserve_command(cfg: ServeBenchConfig) -> list[str]:
    """The LitServe peer (``mmscale.bench.serving.litserve_peer``) with the main server's settings, the
    ones it leaves to the server resolved as the server resolves them on this host."""
    ours = resolve(ServeConfig(device=cfg.device, max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms,
                               frontends=cfg.frontends, cuda_graphs=cfg.cuda_graphs))
    cmd = [sys.executable, "-m", "mmscale.bench.serving.litserve_peer", "--device", cfg.device,
           "--max-batch", str(ours.max_batch), "--max-wait-ms", str(ours.max_wait_ms),
           "--api-servers", str(ours.frontends)]
    return cmd + (["--cuda-graphs"] if ours.cuda_graphs else []) + model_args(cfg)
