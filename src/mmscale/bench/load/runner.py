"""``bench load``: latency percentiles and throughput of a server under closed- and open-loop load.

Each load level repeats measurement windows until throughput and p99 of the last three agree
within the tolerance (``stability``), pooling those windows for the row; an SLO search
(``slo``) finds the highest load that keeps the chosen percentile within its bound.
Throughput is over the time requests were actually offered and answered (a request budget spent
early shortens it); an open-loop rate the client did not send at is flagged, never reported as
reached. Rows are flat dataclasses; ``format_table`` presents them.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import asdict, dataclass, field

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mmscale.bench.load.client import STATUS_CONN_ERROR
from mmscale.bench.load.payload import build_payloads
from mmscale.bench.load.pool import ClientPool, window_jobs
from mmscale.bench.load.slo import Slo, parse_slo, search_capacity
from mmscale.bench.load.stats import BEHIND_LAG_MS, Records, client_cpu_pct, fell_behind, ok_latencies_ms, summarize
from mmscale.bench.stability import repeat_until_stable
from mmscale.errors import ConfigError
from mmscale.monitor import HardwareMonitor
from mmscale.stats import percentile

log = logging.getLogger(__name__)

CLIENT_BUSY_PCT = 85.0  # a client process busier than this may be the bottleneck


@dataclass
class LoadConfig:
    url: str = ""
    """Server base URL, e.g. http://127.0.0.1:8000."""
    endpoint: str = "match"
    """match, embed_image or embed_text."""
    concurrencies: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64, 128, 256])
    """Closed-loop levels (concurrent users); empty skips the closed-loop sweep."""
    rates: list[float] = field(default_factory=list)
    """Open-loop Poisson arrival rates in requests/s; empty skips the open-loop sweep."""
    window_s: float = 3.0
    """Length of one measurement window."""
    max_windows: int = 5
    """Window budget per level; a level not stable by then is marked unstable."""
    stable_windows: int = 3
    """Windows that must agree."""
    tolerance: float = 0.10
    """Relative agreement required of throughput and p99 over the last windows."""
    max_requests: int = 100_000
    """Request budget per window (bounds a run against a very fast server)."""
    processes: int = 2
    """Client processes."""
    slo: str = "p99=100ms"
    """Latency objective for goodput and the capacity search."""
    search: str = "none"
    """Capacity search: none, concurrency (closed loop) or rate (open loop)."""
    search_high: float = 0.0
    """Upper end of the search (0: 512 users or 8x the best sweep throughput)."""
    warmup_s: float = 1.0
    """Unrecorded load before the first level."""
    timeout_s: float = 30.0
    """Per-request timeout (counted as status 'timeout')."""
    token: str | None = None
    dataset: str | None = None
    """Dataset directory or manifest for real JPEGs and captions (default: generated)."""
    payloads: int = 64
    payload_format: str = "raw"
    """``raw`` (the image as the body, captions in the query) or ``json`` (base64 image in a JSON body)."""
    captions_per_request: int = 1
    seed: int = 0
    energy: bool = True
    """Sample GPU energy (NVML) during the run for joules per served request (needs a GPU here)."""
    energy_interval_s: float = 0.2
    """Sampling period of that monitor."""

    def validate(self) -> None:
        if self.search not in ("none", "concurrency", "rate"):
            raise ConfigError("search", f"must be none, concurrency or rate, got {self.search!r}")
        if self.window_s <= 0 or self.max_windows < 1 or self.stable_windows < 1 or self.processes < 1:
            raise ConfigError("window_s", "window_s > 0, max_windows >= 1, stable_windows >= 1, processes >= 1")
        if any(c < 1 for c in self.concurrencies) or any(r <= 0 for r in self.rates):
            raise ConfigError("concurrencies", "levels must be positive")
        parse_slo(self.slo)


@dataclass
class LoadRow:
    server: str
    mode: str
    concurrency: int
    target_rate_per_s: float
    achieved_rate_per_s: float
    requests: int
    ok: int
    throughput_per_s: float
    """Requests answered 2xx / ``measured_s``."""
    goodput_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors_by_status: dict
    send_lag_p99_ms: float
    offered_rate_reached: bool | None
    """Open loop: the client sent at the target rate (False: the figures understate the load, see
    the warnings). None in closed loop."""
    measured_s: float
    """Seconds the row's requests were offered and answered in, summed over its windows: shorter
    than the windows when the request budget ran out first."""
    client_cpu_max_pct: float
    client_cpu_total_pct: float
    processes: int
    windows: int
    stable: bool
    spread: float
    slo: str
    energy_j_per_request: float | None = None
    """GPU joules over the row's windows / requests answered 200 in them (includes idle power)."""
    refused_p99_ms: float = float("nan")
    """p99 latency of the 503/429 answers (nan, null in JSON, when nothing was refused)."""


@dataclass
class LoadResult:
    rows: list[LoadRow]
    search: dict | None
    warnings: list[str]
    headline: str

    def as_dict(self) -> dict:
        return {"rows": [asdict(r) for r in self.rows], "search": self.search,
                "warnings": self.warnings, "headline": self.headline}


class LoadRunner:
    """Measures load levels against one server with a persistent pool of client processes."""

    def __init__(self, cfg: LoadConfig, pool: ClientPool, server: str):
        self.cfg, self.pool, self.server = cfg, pool, server
        self.slo: Slo = parse_slo(cfg.slo)
        self.warnings: list[str] = []
        self.window_index = 0
        self.spans: dict[int, list[tuple[float, float]]] = {}  # id(row) -> its windows (monotonic s)

    def window(self, mode: str, level: float) -> tuple[Records, float, float, dict]:
        """One window: its pooled records, when load began (monotonic s), how long it was offered (s)
        and the client's CPU use."""
        cfg = self.cfg
        self.window_index += 1
        jobs = window_jobs(cfg.url, mode, level, len(self.pool), cfg.window_s, cfg.max_requests,
                           cfg.timeout_s, cfg.token, seed=cfg.seed + 1000 * self.window_index)
        results = self.pool.run(jobs)
        records = Records()
        for r in results:
            records.extend(r)
        cpu_max, cpu_total = client_cpu_pct(results)
        # the processes offer load side by side: from the first to begin to the last to stop
        began_s = min(r["began_s"] for r in results)
        offered_s = max(r["began_s"] + r["offered_s"] for r in results) - began_s
        return records, began_s, offered_s, {"cpu_max": cpu_max, "cpu_total": cpu_total, "processes": len(jobs)}

    def level(self, mode: str, level: float) -> tuple[LoadRow, list[float]]:
        """Repeat windows until stable; the row pools the last ``stable_windows`` windows."""
        cfg = self.cfg

        def metrics(w):
            one = summarize([w[:3]])
            return [one.throughput_per_s, one.p99_ms]

        windows, verdict = repeat_until_stable(lambda i: self.window(mode, level), metrics,
                                               cfg.tolerance, cfg.stable_windows, cfg.max_windows)
        used = windows[-cfg.stable_windows:]
        stats = summarize([w[:3] for w in used], self.slo.bound_ms)
        cpu_max = max(w[3]["cpu_max"] for w in used)
        each = [summarize([w[:3]]) for w in used]
        behind = mode == "open" and any(fell_behind(level, one.requests, one.send_span_s, one.send_lag_p99_ms)
                                        for one in each)
        what = f"{self.server} {mode} {'c=%d' % level if mode == 'closed' else '%.0f req/s' % level}"
        self.warn_level(what, level, stats, [w[2] for w in used], behind, cpu_max, verdict)
        row = LoadRow(
            server=self.server, mode=mode, concurrency=int(level) if mode == "closed" else 0,
            target_rate_per_s=float(level) if mode == "open" else 0.0,
            achieved_rate_per_s=stats.achieved_rate_per_s, requests=stats.requests, ok=stats.ok,
            throughput_per_s=stats.throughput_per_s, goodput_per_s=stats.goodput_per_s,
            p50_ms=stats.p50_ms, p90_ms=stats.p90_ms, p99_ms=stats.p99_ms, max_ms=stats.max_ms,
            mean_ms=stats.mean_ms, errors_by_status=stats.errors_by_status,
            send_lag_p99_ms=stats.send_lag_p99_ms, offered_rate_reached=not behind if mode == "open" else None,
            measured_s=stats.duration_s, client_cpu_max_pct=cpu_max,
            client_cpu_total_pct=max(w[3]["cpu_total"] for w in used), processes=used[0][3]["processes"],
            windows=verdict.windows, stable=verdict.stable, spread=verdict.spread, slo=str(self.slo),
            refused_p99_ms=stats.refused_p99_ms,
        )
        self.spans[id(row)] = [(w[1], w[1] + one.duration_s) for w, one in zip(used, each)]
        latencies = [x for rec, _, _, _ in used for x in ok_latencies_ms(rec)]
        return row, latencies

    def warn_level(self, what: str, level: float, stats, offered_s: list[float], behind: bool,
                   cpu_max: float, verdict) -> None:
        """The warning lines for one level: what makes its figures less than they seem."""
        cfg = self.cfg
        if behind:
            reasons = [f"sent {stats.achieved_rate_per_s:.0f} of {level:.0f} req/s"] if fell_behind(
                level, stats.requests, stats.send_span_s, 0.0) else []
            if stats.send_lag_p99_ms > BEHIND_LAG_MS:
                reasons.append(f"sends ran p99 {stats.send_lag_p99_ms:.1f} ms behind schedule")
            self.warnings.append(f"{what}: offered rate not reached: the client "
                                 f"{' and '.join(reasons) or 'fell behind in a window'}; add --processes or CPU")
        if min(offered_s) < 0.99 * cfg.window_s:
            spent = (f"{min(offered_s):.2f}" if max(offered_s) - min(offered_s) < 0.005
                     else f"{min(offered_s):.2f}-{max(offered_s):.2f}")
            self.warnings.append(f"{what}: the request budget (--max-requests {cfg.max_requests}) ran out {spent} s "
                                 f"into each {cfg.window_s:g} s window; figures are over the {stats.duration_s:.2f} s "
                                 f"measured in {len(offered_s)} window{'s' if len(offered_s) > 1 else ''}")
        if cpu_max > CLIENT_BUSY_PCT:
            self.warnings.append(f"{what}: a client process used {cpu_max:.0f}% CPU; the client may be the "
                                 "bottleneck (add --processes or CPU)")
        if not verdict.stable:
            self.warnings.append(f"{what}: not stable after {verdict.windows} windows (needs the last "
                                 f"{cfg.stable_windows} within {cfg.tolerance:.0%}; spread {verdict.spread:.0%})")
        if stats.errors_by_status.get("conn_error") and stats.ok == 0:
            self.warnings.append(f"{what}: every request failed to connect to {cfg.url}")
        elif stats.ok == 0:
            self.warnings.append(f"{what}: no request was answered 2xx ({stats.errors_by_status or 'none sent'}); "
                                 "its latency figures are undefined (null in JSON)")

    def warm_up(self) -> None:
        if self.cfg.warmup_s > 0:
            jobs = window_jobs(self.cfg.url, "closed", min(8, 4 * len(self.pool)), len(self.pool),
                               self.cfg.warmup_s, self.cfg.max_requests, self.cfg.timeout_s, self.cfg.token, 999)
            results = self.pool.run(jobs)
            statuses = [s for r in results for s in r["status"]]
            # none sent (a client that began after the short warm-up ended) says nothing about the server
            if statuses and all(s == STATUS_CONN_ERROR for s in statuses):
                raise ConfigError("url", f"cannot connect to {self.cfg.url}")


def bench_load(cfg: LoadConfig, server: str = "server", progress: bool = True) -> LoadResult:
    """Sweep closed-loop concurrency and open-loop rates against ``cfg.url``; optionally search capacity."""
    cfg.validate()
    payloads = build_payloads(cfg.endpoint, cfg.payloads, cfg.captions_per_request, cfg.dataset, cfg.seed,
                              cfg.payload_format)
    levels = [("closed", float(c)) for c in cfg.concurrencies] + [("open", float(r)) for r in cfg.rates]
    rows: list[LoadRow] = []
    search = None
    monitor = start_energy_monitor(cfg)
    try:
        with ClientPool(cfg.processes, payloads) as pool, progress_bar(progress) as bar:
            runner = LoadRunner(cfg, pool, server)
            runner.warm_up()
            task = bar.add_task(f"load {server}", total=len(levels)) if bar else None
            for mode, level in levels:
                row, _ = runner.level(mode, level)
                rows.append(row)
                if bar:
                    bar.advance(task)
            if cfg.search != "none":
                search = run_search(runner, rows)
    finally:
        if monitor is not None:
            monitor.stop()
    if monitor is not None:
        attach_energy(rows, runner.spans, monitor.energy_in_span_j)
    headline = make_headline(rows, search, runner.slo)
    return LoadResult(rows, search, runner.warnings, headline)


def start_energy_monitor(cfg: LoadConfig):
    """A GPU monitor for the run's energy, or None (disabled, or no GPU visible to NVML)."""
    if not cfg.energy:
        return None

    try:
        monitor = HardwareMonitor(interval_s=cfg.energy_interval_s, process=False).start()
    except Exception as exc:  # the load figures do not depend on it
        log.warning("no energy figures: the monitor did not start (%s)", exc)
        return None
    if not monitor.gpu_count:
        monitor.stop()
        return None
    return monitor


def attach_energy(rows: list[LoadRow], spans: dict[int, list[tuple[float, float]]], energy_in_span_j) -> None:
    """Set each row's joules per answered request from the energy of its windows (None if unknown)."""
    for row in rows:
        windows = spans.get(id(row), [])
        joules = [energy_in_span_j(start, end) for start, end in windows]
        if windows and row.ok > 0 and all(j is not None for j in joules):
            row.energy_j_per_request = sum(joules) / row.ok


def run_search(runner: LoadRunner, rows: list[LoadRow]) -> dict:
    cfg, slo = runner.cfg, runner.slo
    mode = "closed" if cfg.search == "concurrency" else "open"
    found: dict[float, LoadRow] = {}

    def measure(load: float) -> tuple[float, bool]:
        row, latencies = runner.level(mode, load)
        found[load] = row
        latency = percentile(latencies, slo.percentile) if latencies else math.inf
        return latency, sum(row.errors_by_status.values()) > 0

    if mode == "closed":
        high = cfg.search_high or 512
        result = search_capacity(measure, slo, 1, high, integer=True)
    else:
        best = max((r.throughput_per_s for r in rows), default=0.0)
        low = max(1.0, best / 4) if best else 10.0
        high = cfg.search_high or max(low * 8, best * 2)
        result = search_capacity(measure, slo, low, high)
    best_row = found.get(result.capacity) if result.capacity is not None else None
    return {"slo": result.slo, "mode": mode, "capacity": result.capacity, "capped": result.capped,
            "probes": [asdict(p) for p in result.probes],
            "row": asdict(best_row) if best_row else None}


def make_headline(rows: list[LoadRow], search: dict | None, slo: Slo) -> str:
    if search and search["row"]:
        row, unit = search["row"], ("users" if search["mode"] == "closed" else "req/s offered")
        bound = "at least " if search["capped"] else ""
        return (f"capacity under {search['slo']}: {bound}{search['capacity']:.0f} {unit} -> "
                f"{row['throughput_per_s']:.0f} req/s, goodput {row['goodput_per_s']:.0f} req/s, "
                f"p99 {row['p99_ms']:.1f} ms")
    if search:
        return f"no load tested met {search['slo']}"
    # a rate the client did not reach is not a level that was measured
    good = [r for r in rows if r.p99_ms <= slo.bound_ms and not r.errors_by_status
            and r.offered_rate_reached is not False]
    if not good:
        return f"no level met {slo}"
    best = max(good, key=lambda r: r.goodput_per_s)
    where = f"c={best.concurrency}" if best.mode == "closed" else f"{best.target_rate_per_s:.0f} req/s"
    return (f"best level within {slo}: {where}: {best.throughput_per_s:.0f} req/s, "
            f"p50 {best.p50_ms:.1f} ms, p99 {best.p99_ms:.1f} ms")


def progress_bar(enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), transient=True)


def format_table(rows: list[LoadRow]) -> str:
    """A plain-text table of load rows (one line per level)."""
    head = (f"{'server':<8} {'mode':<6} {'level':>9} {'req/s':>8} {'good/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
            f"{'p99 ms':>8} {'max ms':>8} {'errors':<14} {'cli cpu%':>8} {'stable':>7} {'J/req':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        level = f"c={r.concurrency}" if r.mode == "closed" else f"{r.target_rate_per_s:.0f}/s"
        errors = ",".join(f"{k}:{v}" for k, v in r.errors_by_status.items()) or "-"
        stable = "yes" if r.stable else f"no {r.spread:.0%}"
        behind = "!" if r.offered_rate_reached is False else ""
        joules = "-" if r.energy_j_per_request is None else f"{r.energy_j_per_request:.3f}"
        lines.append(f"{r.server:<8} {r.mode:<6} {level:>9} {r.throughput_per_s:>8.1f} {r.goodput_per_s:>8.1f} "
                     f"{r.p50_ms:>8.2f} {r.p90_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.2f} {errors:<14} "
                     f"{r.client_cpu_max_pct:>7.0f}{behind:1} {stable:>7} {joules:>7}")
    return "\n".join(lines)
