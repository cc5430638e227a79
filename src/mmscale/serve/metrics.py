"""Prometheus metrics of one server instance, in its own registry (so apps in one process don't clash).

With ``--frontends N`` the metrics are split by who observes them: each front-end process counts
requests, latencies and refusals (``FRONTEND_FAMILIES``) in prometheus_client's multiprocess mode
(one mmap file per process in a directory the server owns, summed on read), and the model process
keeps the batch and queue metrics (``MODEL_FAMILIES``). ``/metrics`` on any front end answers both.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mmscale_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("mmscale_request_latency_seconds",
                                 "Server-side time from request start to response, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.batch_size = Histogram("mmscale_batch_size", "Requests per forward pass, by task",
                                    ["task"], buckets=BATCH_BUCKETS, registry=self.registry)
        self.forward = Histogram("mmscale_batch_forward_seconds",
                                 "Time of one batch on the device thread (decode, tokenize, forward), by task",
                                 ["task"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.queue_wait = Histogram("mmscale_queue_wait_seconds",
                                    "Time a request waited in the model process's queue before a "
                                    "batch took it (includes the batching wait, max_wait_ms), by task",
                                    ["task"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.queue_depth = Gauge("mmscale_queue_depth", "Requests admitted and not yet answered",
                                 registry=self.registry)
        self.rejected = Counter("mmscale_rejected", "Requests refused by reason (queue_full, limit, ...)",
                                ["reason"], registry=self.registry)

    def on_batch(self, task: str, size: int, forward_s: float, queue_waits_s: list[float] = ()) -> None:
        self.batch_size.labels(task).observe(size)
        self.forward.labels(task).observe(forward_s)
        for wait_s in queue_waits_s:
            self.queue_wait.labels(task).observe(wait_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)


FRONTEND_FAMILIES = ("mmscale_requests", "mmscale_request_latency_seconds", "mmscale_rejected")
MODEL_FAMILIES = ("mmscale_batch_size", "mmscale_batch_forward_seconds", "mmscale_queue_wait_seconds",
                  "mmscale_queue_depth")


class FamilyFilter:
    """A collector that passes on only the named metric families of another collector."""

    def __init__(self, source, names: tuple[str, ...]):
        self.source, self.names = source, names

    def collect(self):
        return [family for family in self.source.collect() if family.name in self.names]


def render_families(source, names: tuple[str, ...]) -> bytes:
    """Prometheus text of the ``names`` families of ``source`` (a registry or collector)."""
    return generate_latest(FamilyFilter(source, names))


def frontends_text(multiproc_dir: str) -> bytes:
    """The front-end families summed over every front-end process (live or exited) in the directory."""
    return render_families(MultiProcessCollector(None, path=multiproc_dir), FRONTEND_FAMILIES)
