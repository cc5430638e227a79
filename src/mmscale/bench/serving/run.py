"""``mmscale bench serve`` in one go: the offline batch throughput of the model, then our batched server
and the naive one-forward-per-request server under the same closed-loop sweep, then an overload
run against our server as swept, then optionally the LitServe peer. Every server is started fresh
and measured alone; serve_load.json is rewritten after each."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from mmscale.bench.load.runner import LoadConfig, LoadResult, LoadRow, bench_load
from mmscale.bench.load.spawn import SpawnedServer
from mmscale.bench.serving.config import ServeBenchConfig, levels
from mmscale.bench.serving.offline import offline_throughput
from mmscale.bench.serving.server_side import server_cpu_s, server_rss_gib, server_side, side_during
from mmscale.bench.serving.servers import litserve_command, serve_args
from mmscale.bench.serving.summary import peer_ratios, ratios
from mmscale.environment import fingerprint
from mmscale.strict_json import write_json

RESULTS_FILE = "serve_load.json"
CAPTIONS = 1  # captions per request: a request is one sample, as the offline forward counts them


def load_config(cfg: ServeBenchConfig, url: str, concurrencies, rates=(), window_s=None, max_windows=None,
                payload_format="raw") -> LoadConfig:
    return LoadConfig(url=url, concurrencies=list(concurrencies), rates=list(rates),
                      window_s=window_s or cfg.window_s, max_windows=max_windows or cfg.max_windows,
                      processes=cfg.processes, slo=cfg.slo, dataset=cfg.dataset,
                      captions_per_request=CAPTIONS, max_requests=cfg.max_requests,
                      payload_format=payload_format)


def sweep(cfg: ServeBenchConfig, spawned: SpawnedServer, server_levels: list[int],
          name: str) -> tuple[LoadResult, dict]:
    """One closed-loop sweep of a spawned server: its load result, and what the server used and
    counted over the sweep (RSS, CPU share, the /metrics counters since the sweep began)."""
    pid = spawned.proc.pid
    cpu0, wall0, side0 = server_cpu_s(pid), time.monotonic(), server_side(spawned.url)
    result = bench_load(load_config(cfg, spawned.url, server_levels), server=name)
    cpu_pct = 100 * (server_cpu_s(pid) - cpu0) / (time.monotonic() - wall0)
    return result, {"server_rss_gib": server_rss_gib(pid), "server_cpu_pct": cpu_pct,
                    **side_during(spawned.url, side0)}


def overload(cfg: ServeBenchConfig, spawned: SpawnedServer, swept: LoadResult) -> dict:
    """Open loop at 2x the best sweep throughput: goodput (answered within the SLO) against that capacity,
    admitted requests' p99 vs unloaded, rejections, RSS."""
    capacity = max(r.throughput_per_s for r in swept.rows)
    rss_before = server_rss_gib(spawned.proc.pid)
    load = load_config(cfg, spawned.url, [], rates=[2 * capacity], window_s=cfg.overload_s, max_windows=1)
    load.warmup_s = 0
    load.max_requests = max(load.max_requests, int(1.2 * 2 * capacity * cfg.overload_s))  # load for the whole window
    (row,) = bench_load(load, server="batched", progress=False).rows
    rss_after = server_rss_gib(spawned.proc.pid)
    unloaded = next(r for r in swept.rows if r.concurrency == min(x.concurrency for x in swept.rows))
    at_capacity = max(swept.rows, key=lambda r: r.throughput_per_s)
    rejected = sum(v for k, v in row.errors_by_status.items() if k in ("503", "429"))
    return {"row": asdict(row), "capacity_req_per_s": capacity, "unloaded_p99_ms": unloaded.p99_ms,
            "admitted_p99_over_unloaded": row.p99_ms / unloaded.p99_ms,
            "capacity_p99_ms": at_capacity.p99_ms, "admitted_p99_over_capacity_p99": row.p99_ms / at_capacity.p99_ms,
            "rejected_frac": rejected / max(row.requests, 1),
            "goodput_over_capacity": row.goodput_per_s / capacity,
            "other_errors": {k: v for k, v in row.errors_by_status.items() if k not in ("503", "429")},
            "server_alive": spawned.proc.poll() is None, "rss_before_gib": rss_before, "rss_after_gib": rss_after}


def json_peers(cfg: ServeBenchConfig, peer_levels: list[int]) -> tuple[dict, list[LoadRow]]:
    """Our main server and the LitServe peer, both fed JSON bodies (base64 image), same levels:
    their results by name, and their table rows."""
    ours = f"f{cfg.frontends or 'auto'}" + ("+cg" if cfg.cuda_graphs else "") + " json"
    out, rows = {}, []
    for name, spawn in ((ours, dict(serve_args=serve_args(cfg, "batched"))),
                        ("litserve json", dict(serve_args=[], command=litserve_command(cfg), ready_path="/health"))):
        with SpawnedServer(**spawn) as spawned:
            cpu0, wall0 = server_cpu_s(spawned.proc.pid), time.monotonic()
            result = bench_load(load_config(cfg, spawned.url, peer_levels, payload_format="json"), server=name)
            cpu_pct = 100 * (server_cpu_s(spawned.proc.pid) - cpu0) / (time.monotonic() - wall0)
            side = server_side(spawned.url) if spawned.command is None else {
                "mean_batch": float("nan"), "mean_batch_ms": float("nan")}
            out[name] = {**result.as_dict(), "server_rss_gib": server_rss_gib(spawned.proc.pid),
                         "server_cpu_pct": cpu_pct, **side}
            rows += result.rows
    return out, rows


def bench_serving(cfg: ServeBenchConfig, say=print) -> tuple[dict, list[LoadRow]]:
    """Every server of ``cfg`` in turn: the results (as written to OUT/serve_load.json, with
    ``summary``, and ``peers`` and ``peer_summary`` under ``litserve``) and every load row, for the
    table. ``say`` gets progress."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    main_levels, naive_levels = levels(cfg.concurrency), levels(cfg.naive_concurrency)
    results: dict = {"args": asdict(cfg), "environment": fingerprint()}
    results["offline"] = offline = offline_throughput(cfg)
    say(f"offline match forward: {offline['samples_per_s']:.0f} samples/s at batch {offline['batch']}")

    rows = []
    for server, server_levels in (("batched", main_levels), ("naive", naive_levels)):
        with SpawnedServer(serve_args(cfg, server)) as spawned:
            result, used = sweep(cfg, spawned, server_levels, server)
            results[server] = {**result.as_dict(), **used}
            rows += result.rows
            if server == "batched" and cfg.overload_s > 0:
                results["overload"] = overload(cfg, spawned, result)
    write_json(out / RESULTS_FILE, results, indent=1, default=str)

    if cfg.litserve:  # at the lowest and the highest level of the main sweep
        results["peers"], peer_rows = json_peers(cfg, sorted({min(main_levels), max(main_levels)}))
        rows += peer_rows
        write_json(out / RESULTS_FILE, results, indent=1, default=str)

    results["summary"] = ratios(results, main_levels, naive_levels)
    if cfg.litserve:
        results["peer_summary"] = peer_ratios(results, naive_levels)
    write_json(out / RESULTS_FILE, results, indent=1, default=str)
    return results, rows
