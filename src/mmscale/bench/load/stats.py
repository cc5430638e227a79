"""Pure statistics over load-generator records: percentiles, throughput, goodput, errors, lag.

A record is (scheduled_s, sent_s, done_s, status). Latency is ``done - scheduled``: in closed
loop ``scheduled == sent``; in open loop the scheduled time is when the request was due, so time
spent unable to send counts (no coordinated omission).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from mmscale.stats import percentile

STATUS_NAMES = {-1: "timeout", 0: "conn_error"}
BEHIND_RATE_FRAC = 0.95  # achieved arrival rate below this fraction of the target: client fell behind
BEHIND_LAG_MS = 10.0  # or p99 send lag above this


@dataclass
class Records:
    scheduled_s: list[float] = field(default_factory=list)
    sent_s: list[float] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)

    def extend(self, other: dict | "Records") -> None:
        get = other.__getitem__ if isinstance(other, dict) else other.__getattribute__
        for name in ("scheduled_s", "sent_s", "done_s", "status"):
            getattr(self, name).extend(get(name))

    def __len__(self) -> int:
        return len(self.status)


@dataclass
class LevelStats:
    requests: int
    ok: int
    duration_s: float
    """Time measured: from each window's start to its last response (or the end of its offered
    time, if later), summed over the windows."""
    throughput_per_s: float
    """Successful responses per second."""
    goodput_per_s: float
    """Successful responses within the SLO latency bound per second."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors_by_status: dict[str, int]
    achieved_rate_per_s: float
    """Requests actually sent per second of ``send_span_s`` (compare with the target in open loop)."""
    send_span_s: float
    """Time the requests were sent over: the offered time, or up to the last send if that ran late."""
    send_lag_p99_ms: float
    """p99 of (actual send - scheduled send): how far the client fell behind its schedule."""
    refused_p99_ms: float = float("nan")
    """p99 latency of the 503/429 answers: how fast overload is refused (nan when none was)."""


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, str(status))


def ok_latencies_ms(records: Records) -> list[float]:
    """Latency of each successful (2xx) request, from its scheduled send time."""
    return [(d - s) * 1000.0 for s, d, st in zip(records.scheduled_s, records.done_s, records.status)
            if 200 <= st < 300]


def refused_latencies_ms(records: Records) -> list[float]:
    """Latency of each 503/429 answer (the server refusing load), from its scheduled send time."""
    return [(d - s) * 1000.0 for s, d, st in zip(records.scheduled_s, records.done_s, records.status)
            if st in (429, 503)]


def summarize(windows: list[tuple[Records, float, float]], slo_ms: float | None = None) -> LevelStats:
    """Statistics over one or more windows ``(records, start_s, offered_s)``, pooled.

    ``offered_s`` is how long the window offered requests: its length, or less when the request
    budget ran out first. Latency percentiles are over successful (2xx) requests. Throughput is
    over the time actually measured: from the window's start to its last response, or to the end
    of the offered time if that is later, so requests that straggle past the window are not
    counted as free and a budget spent early does not dilute the rate with idle time. The sent
    rate is over the offered time, stretched to the last actual send when the client ran late.
    """
    latencies_ms: list[float] = []
    refused_ms: list[float] = []
    lags_ms: list[float] = []
    errors: collections.Counter = collections.Counter()
    requests, elapsed_s, send_span_s = 0, 0.0, 0.0
    for records, start_s, offered_s in windows:
        latencies_ms += ok_latencies_ms(records)
        refused_ms += refused_latencies_ms(records)
        lags_ms += [(a - s) * 1000.0 for s, a in zip(records.scheduled_s, records.sent_s)]
        errors.update(status_name(st) for st in records.status if not 200 <= st < 300)
        requests += len(records)
        elapsed_s += max(offered_s, max(records.done_s, default=start_s) - start_s, 1e-9)
        send_span_s += max(offered_s, max(records.sent_s, default=start_s) - start_s, 1e-9)
    within = sum(1 for lat in latencies_ms if slo_ms is None or lat <= slo_ms)
    pct = (lambda q: percentile(latencies_ms, q)) if latencies_ms else (lambda q: float("nan"))
    return LevelStats(
        requests=requests, ok=len(latencies_ms), duration_s=elapsed_s,
        throughput_per_s=len(latencies_ms) / elapsed_s, goodput_per_s=within / elapsed_s,
        p50_ms=pct(50), p90_ms=pct(90), p99_ms=pct(99), max_ms=max(latencies_ms, default=float("nan")),
        mean_ms=sum(latencies_ms) / len(latencies_ms) if latencies_ms else float("nan"),
        errors_by_status=dict(sorted(errors.items())),
        achieved_rate_per_s=requests / send_span_s, send_span_s=send_span_s,
        send_lag_p99_ms=percentile(lags_ms, 99) if lags_ms else 0.0,
        refused_p99_ms=percentile(refused_ms, 99) if refused_ms else float("nan"),
    )


def fell_behind(target_rate_per_s: float, requests_sent: int, send_span_s: float, send_lag_p99_ms: float) -> bool:
    """The open-loop client did not keep its schedule: the offered rate was not reached (its
    figures then understate the load). ``send_span_s`` is the time the requests were sent over.

    Poisson counts vary by sqrt(N), so a shortfall counts only beyond max(5%, 3 sigma) of the
    expected count; a p99 send lag over 10 ms counts on its own.
    """
    if target_rate_per_s <= 0:
        return False
    expected = target_rate_per_s * send_span_s
    slack = max((1 - BEHIND_RATE_FRAC) * expected, 3.0 * expected ** 0.5)
    return requests_sent < expected - slack or send_lag_p99_ms > BEHIND_LAG_MS


def client_cpu_pct(results: list[dict]) -> tuple[float, float]:
    """(busiest process, sum over processes) CPU % of the load generator over a window."""
    per_process = [100.0 * r["cpu_s"] / r["wall_s"] for r in results]
    return max(per_process, default=0.0), sum(per_process)
