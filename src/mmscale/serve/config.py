"""The server's typed config: the ``[serve]`` table of a preset plus CLI flags.

Limits exist so that one request can never take the server down: a body, image or caption
count over a limit is refused with a 4xx that names the limit before any model work is done.
Fields left at ``None`` are chosen for the host by ``defaults.resolve``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from mmscale.errors import ConfigError
from mmscale.serve.depth_board import MAX_FRONTENDS

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_CAPTION_CHARS = 1000  # captions are truncated to MAX_TEXT_LEN anyway; this bounds tokenizer work
MAX_TEXT_LEN = 32  # tokens per caption fed to the model (longer captions are truncated)
CUDA_GRAPH_MAX_BATCH = 128  # largest padded batch with a CUDA graph; larger ones run eager
TRIM_BATCHES_ABOVE = 48  # a larger batch is cut to the largest padding bucket that fits
RETRY_AFTER_S = 1  # Retry-After on a 503
DRAIN_TIMEOUT_S = 30.0  # on SIGTERM, how long in-flight requests may take before the server exits
FRONTEND_CONFIG_ENV = "MMSCALE_FRONTEND_CONFIG"  # a front end's config; not argv: it may hold the token
BODY_TIMEOUT_S = 5.0  # a request body that has not fully arrived by then gets 408


def httptools_installed() -> bool:
    return importlib.util.find_spec("httptools") is not None


def http_parser() -> str:
    """uvicorn's HTTP parser: httptools (C) when installed, else h11 (pure Python)."""
    return "httptools" if httptools_installed() else "h11"


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    """Interface to bind. Anything beyond loopback needs ``token`` (or ``insecure``)."""
    port: int = 8000
    """TCP port; 0 picks a free one."""
    server: str = "batched"
    """``batched`` (dynamic batching) or ``naive`` (one forward per request, the reference peer)."""
    max_batch: int | None = None
    """Most requests that one forward pass takes. None: 256 on CUDA, 32 on CPU."""
    max_wait_ms: float | None = None
    """Longest a request waits for others to join its batch. None: 1 on CUDA, 2 on CPU."""
    slo_ms: float = 100.0
    """Admission by expected wait: a request is refused (503) when the requests ahead of it would
    take longer than this at the measured service rate. 0: only ``max_queue`` bounds admission."""
    max_queue: int = 4096
    """Requests admitted and not yet answered; a memory backstop behind ``slo_ms`` (503 beyond it)."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted (413 ``max_body_bytes`` beyond it)."""
    max_image_pixels: int = 4096 * 4096
    """Largest image (width x height) accepted (413 ``max_image_pixels``); checked from the header."""
    max_captions: int = 16
    """Most captions in one ``/v1/match`` or ``/v1/embed/text`` request (400 ``max_captions``)."""
    token: str | None = None
    """Bearer token required on ``/v1/*`` and ``/metrics``; None means no auth (loopback only)."""
    insecure: bool = False
    """Allow binding beyond loopback without a token."""
    device: str = "auto"
    """``auto`` (cuda when present), ``cpu`` or ``cuda``."""
    frontends: int | None = None
    """HTTP front-end processes feeding one model process. None: from the cores on CUDA, 1 on CPU."""
    cuda_graphs: bool | None = None
    """Replay a CUDA graph per padded batch shape (CUDA only). None: on with CUDA, off on CPU."""
    cpu_threads: int = 0
    """torch intra-op threads on CPU; 0 keeps torch's default."""

    def validate(self) -> None:
        if self.server not in ("batched", "naive"):
            raise ConfigError("serve.server", f"must be 'batched' or 'naive', got {self.server!r}")
        for name in ("max_batch", "max_queue", "frontends", "max_body_bytes", "max_image_pixels", "max_captions"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"serve.{name}", f"must be >= 1, got {value}")
        if self.frontends is not None and self.frontends > MAX_FRONTENDS:
            raise ConfigError("serve.frontends", f"must be <= {MAX_FRONTENDS} (slots on the shared queue page), "
                                                 f"got {self.frontends}")
        for name in ("max_wait_ms", "slo_ms", "cpu_threads"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"serve.{name}", f"must be >= 0, got {value}")
        if not 0 <= self.port <= 65535:
            raise ConfigError("serve.port", f"must be in 0..65535, got {self.port}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("serve.device", f"must be auto, cpu or cuda, got {self.device!r}")
        if self.token is not None and not self.token:
            raise ConfigError("serve.token", "must not be empty")
        if self.host not in LOOPBACK_HOSTS and not self.token and not self.insecure:
            raise ConfigError(
                "serve.host",
                f"binding {self.host} exposes the model beyond this machine: set --token "
                "(clients send 'Authorization: Bearer TOKEN') or pass --insecure",
            )
