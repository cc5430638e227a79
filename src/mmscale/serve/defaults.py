"""What ``mmscale serve`` runs with when a field is left unset, resolved once for the host.

On CUDA the server runs as the best measured configuration did (``--frontends 8 --cuda-graphs
--max-batch 256 --max-wait-ms 1`` on 16 cores, docs/performance.md, Serving): half the cores as HTTP front
ends, at most 8. On CPU it is one process without graphs.
"""

from __future__ import annotations

import dataclasses
import os

from mmscale.serve.config import ServeConfig

MAX_FRONTENDS = 8
CUDA = dict(max_batch=256, max_wait_ms=1.0, cuda_graphs=True)
CPU = dict(max_batch=32, max_wait_ms=2.0, cuda_graphs=False, frontends=1)


def host_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cuda_available() -> bool:
    import torch  # here, not at the top: front ends import this module (via app) and start without torch

    return torch.cuda.is_available()


def on_cuda(cfg: ServeConfig) -> bool:
    """Whether the model will run on CUDA (``device`` resolved the way the predictor resolves it)."""
    return cfg.device == "cuda" or (cfg.device == "auto" and cuda_available())


def resolve(cfg: ServeConfig, cuda: bool | None = None, cores: int | None = None) -> ServeConfig:
    """A copy of ``cfg`` with every ``None`` field chosen for the host; set fields are kept."""
    cuda = on_cuda(cfg) if cuda is None else cuda
    cores = host_cores() if cores is None else cores
    chosen = dict(CUDA, frontends=max(1, min(MAX_FRONTENDS, cores // 2))) if cuda else dict(CPU)
    if cfg.server == "naive":
        chosen.update(frontends=1, cuda_graphs=False)
    return dataclasses.replace(cfg, **{k: v for k, v in chosen.items() if getattr(cfg, k) is None})
