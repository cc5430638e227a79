"""What a spawned server says about itself: batch sizes, forward times and tail counts from its
/metrics page, and the CPU time and memory of its processes."""

from __future__ import annotations

import urllib.request

import psutil

# the /metrics counters made relative to the start of a sweep (``side_during``)
COUNTS = ("batches", "forwards_over_100ms", "match_requests_over_250ms", "match_requests", "match_queue_waits",
          "match_queue_wait_sum_s", "match_queue_waits_over_100ms", "match_queue_waits_over_250ms")


def server_side(url: str) -> dict:
    """From the server's /metrics: mean batch size and time, and the tail: forwards over 100 ms and match requests
    over 250 ms inside the server. Counters absent from the page (nothing observed yet) are nan."""
    # prometheus_client comes with the serve extra, which every spawned server needs anyway
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def sample(name: str, **labels) -> float:
        return next((s.value for s in samples if s.name == name and s.labels == labels), float("nan"))

    def above(name: str, le: str, **labels) -> float:
        """Observations of histogram ``name`` over the bucket bound ``le`` (buckets are cumulative)."""
        return sample(f"{name}_count", **labels) - sample(f"{name}_bucket", le=le, **labels)

    def value(name: str) -> float:
        found = sample(name, task="match")
        return 0.0 if found != found else found  # absent (nan) -> 0

    batches = value("mmscale_batch_size_count")
    return {"batches": batches, "mean_batch": value("mmscale_batch_size_sum") / max(batches, 1),
            "mean_batch_ms": 1000 * value("mmscale_batch_forward_seconds_sum") / max(batches, 1),
            # where a latency tail comes from: forwards, or requests timed inside the server
            "forwards_over_100ms": above("mmscale_batch_forward_seconds", "0.1", task="match"),
            "match_requests_over_250ms": above("mmscale_request_latency_seconds", "0.25", endpoint="/v1/match"),
            "match_requests": sample("mmscale_request_latency_seconds_count", endpoint="/v1/match"),
            # the queue in front of the model loop, timed apart from the forward
            "match_queue_waits": value("mmscale_queue_wait_seconds_count"),
            "match_queue_wait_sum_s": value("mmscale_queue_wait_seconds_sum"),
            "match_queue_waits_over_100ms": above("mmscale_queue_wait_seconds", "0.1", task="match"),
            "match_queue_waits_over_250ms": above("mmscale_queue_wait_seconds", "0.25", task="match")}


def side_during(url: str, before: dict) -> dict:
    """``server_side`` now, with its counters made relative to ``before`` (taken when the sweep
    started), so tail counts cover the sweep (the load generator's warm-up included), not the
    server's start-up. A series absent before (no request yet) counted zero."""
    after = server_side(url)
    out = {**after, **{f"sweep_{key}": after[key] - (before[key] if before[key] == before[key] else 0.0)
                       for key in COUNTS}}
    waits = out["sweep_match_queue_waits"]
    out["sweep_mean_queue_wait_ms"] = 1000 * out["sweep_match_queue_wait_sum_s"] / waits if waits > 0 else float("nan")
    return out


def server_processes(pid: int) -> list[psutil.Process]:
    """The server and its front-end processes (``--frontends N``)."""
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def server_cpu_s(pid: int) -> float:
    total = 0.0
    for proc in server_processes(pid):
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def server_rss_gib(pid: int) -> float:
    return sum(proc.memory_info().rss for proc in server_processes(pid)) / 2**30
