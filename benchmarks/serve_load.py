"""Serving benchmark in one go: offline batch throughput of the model, then our batched server and
the naive one-forward-per-request server under the same closed-loop sweep, then an overload run,
then optional variants of our server (front-end processes, CUDA graphs) at a few levels.

    PYTHONPATH=src python3 benchmarks/serve_load.py --preset base --out runs/serve_load   # GPU, full sweep
    PYTHONPATH=src python3 benchmarks/serve_load.py --cpu-smoke --out runs/serve_smoke    # CPU smoke

The H100 comparison of the serving options (about 6 minutes; every server started fresh):

    PYTHONPATH=src python3 benchmarks/serve_load.py --preset base --out runs/serve_variants \
        --concurrency 1,16,64,256 --naive-concurrency 1,256 --window-s 3 --max-windows 3 \
        --overload-s 20 --variants f4,f1+cg,f4+cg --variant-concurrency 1,256

``--variants``: ``fN`` is ``--frontends N --no-cuda-graphs``, ``+cg`` turns the graphs on; each runs
closed loop at ``--variant-concurrency``. ``--frontends`` / ``--cuda-graphs`` / ``--slo-ms`` set the
main batched server (the one the overload run hits); left out, the server chooses for its host.

With variants, a table of one line per server (the main batched one first) comes before the
summary: p50 at the lowest level, req/s and p99 at the highest, ratios to naive and to offline.
Prints the summary last, with the ratios the targets are stated in: ours / naive at the highest
concurrency, ours / offline batch throughput, p50 at concurrency 1, and under overload
(open loop at 2x the measured capacity) the admitted p99 against the unloaded p99.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

from mmscale.strict_json import write_json

SMOKE_DEFAULTS = dict(preset="tiny", device="cpu", concurrency="1,4", naive_concurrency="1,4",
                      max_batch=16, offline_batch=8, offline_steps=2, window_s=1.0, max_windows=3, processes=1,
                      overload_s=2.0, cpu_threads=1, slo="p99=5s")


def offline_throughput(args) -> dict:
    """samples/s of the match forward (1 image + 1 caption per sample) at a fixed large batch."""
    import torch

    from mmscale.serve.config import ServeConfig
    from mmscale.serve.predictor import match_forward
    from mmscale.serve.run import build_predictor

    cfg = ServeConfig(device=args.device)
    predictor = build_predictor(cfg, args.checkpoint, args.preset)
    model, device, dtype = predictor.model, predictor.device, predictor.dtype
    side, batch = model.cfg.image_size, args.offline_batch
    pixels = torch.randn(batch, 3, side, side, device=device, dtype=dtype)
    ids = torch.randint(1000, 20000, (batch, predictor.max_text_tokens), device=device)
    mask = torch.ones_like(ids)
    owner = torch.arange(batch, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            match_forward(model, pixels, ids, mask, owner)
        sync()
        start = time.perf_counter()
        for _ in range(args.offline_steps):
            match_forward(model, pixels, ids, mask, owner)
        sync()  # host sync: end of the timed region
        seconds = time.perf_counter() - start
    out = {"batch": batch, "steps": args.offline_steps, "samples_per_s": batch * args.offline_steps / seconds,
           "step_ms": 1000 * seconds / args.offline_steps, "device": str(device), "dtype": str(dtype).replace("torch.", "")}
    del predictor, model, pixels
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


class Variant(NamedTuple):
    frontends: int
    graphs: bool  # CUDA graphs on


def parse_variant(spec: str) -> Variant:
    """``f4`` -> (4 front ends, no graphs); ``f1+cg`` -> (1, graphs)."""
    name, *extras = spec.split("+")
    if not name.startswith("f") or not name[1:].isdigit() or int(name[1:]) < 1 or extras not in ([], ["cg"]):
        raise SystemExit(f"--variants: {spec!r} is not fN with optional +cg (N >= 1)")
    return Variant(int(name[1:]), extras == ["cg"])


def serve_args(args, server: str, frontends: int | None = None, cuda_graphs: bool | None = None) -> list[str]:
    frontends = args.frontends if frontends is None else frontends
    cuda_graphs = args.cuda_graphs if cuda_graphs is None else cuda_graphs
    out = ["--server", server, "--device", args.device, "--max-batch", str(args.max_batch),
           "--max-wait-ms", str(args.max_wait_ms), "--max-queue", str(args.max_queue), "--slo-ms", str(args.slo_ms)]
    out += ["--checkpoint", args.checkpoint] if args.checkpoint else ["--preset", args.preset]
    if args.cpu_threads:
        out += ["--cpu-threads", str(args.cpu_threads)]
    if args.max_captions:
        out += ["--max-captions", str(args.max_captions)]
    if server == "batched":
        out += ["--frontends", str(frontends)] if frontends else []
        out += [] if cuda_graphs is None else ["--cuda-graphs" if cuda_graphs else "--no-cuda-graphs"]
    for override in args.server_set:
        out += ["--set", override]
    return out


def overload_bounds(args, max_queue: int | None = None) -> list[str]:
    """The admission flags of one overload server (empty: overload the main server as swept).
    They follow the main server's flags, so they win over its ``--max-queue``."""
    out = []
    if args.overload_slo_ms is not None:
        out += ["--slo-ms", str(args.overload_slo_ms)]
    if max_queue is not None:
        out += ["--max-queue", str(max_queue)]
    return out


def overload_counts(args) -> list[int | None]:
    """``--overload-max-queue`` as a list: one fresh overload server per count (``[None]``: no count)."""
    text = args.overload_max_queue
    return [int(x) for x in str(text).split(",")] if text not in (None, "") else [None]


def server_side(url: str) -> dict:
    """From the server's /metrics: mean batch size and time, and the tail: forwards over 100 ms and match requests
    over 250 ms inside the server. Counters absent from the page (nothing observed yet) are nan."""
    import urllib.request

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


COUNTS = ("batches", "forwards_over_100ms", "match_requests_over_250ms", "match_requests", "match_queue_waits",
          "match_queue_wait_sum_s", "match_queue_waits_over_100ms", "match_queue_waits_over_250ms")


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


def server_processes(pid: int) -> list:
    """The server and its front-end processes (``--frontends N``)."""
    import psutil

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


def load_config(args, url: str, concurrencies, rates=(), window_s=None, max_windows=None, payload_format="raw"):
    from mmscale.bench.load import LoadConfig

    return LoadConfig(url=url, concurrencies=list(concurrencies), rates=list(rates),
                      window_s=window_s or args.window_s, max_windows=max_windows or args.max_windows,
                      processes=args.processes, slo=args.slo, dataset=args.dataset,
                      captions_per_request=args.captions, max_requests=args.max_requests,
                      payload_format=payload_format)


def litserve_command(args) -> list[str]:
    """The LitServe peer (``benchmarks/litserve_peer.py``) with the main server's settings."""
    import sys

    cmd = [sys.executable, str(Path(__file__).with_name("litserve_peer.py")), "--device", args.device,
           "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
           "--api-servers", str(args.frontends or 1),
           "--max-captions", str(args.max_captions or 16)]
    cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else ["--preset", args.preset]
    cmd += ["--cuda-graphs"] if args.cuda_graphs else []
    cmd += ["--cpu-threads", str(args.cpu_threads)] if args.cpu_threads else []
    return cmd


def json_peers(args, levels) -> tuple[dict, list]:
    """Our main server and the LitServe peer, both fed JSON bodies (base64 image), same levels:
    their results by name, and their table rows."""
    from mmscale.bench.load import bench_load
    from mmscale.bench.load_spawn import SpawnedServer

    ours = f"f{args.frontends or 'auto'}" + ("+cg" if args.cuda_graphs else "") + " json"
    out, rows = {}, []
    for name, spawn in ((ours, dict(serve_args=serve_args(args, "batched"))),
                        ("litserve json", dict(serve_args=[], command=litserve_command(args), ready_path="/health"))):
        with SpawnedServer(**spawn) as spawned:
            cpu0, wall0 = server_cpu_s(spawned.proc.pid), time.monotonic()
            result = bench_load(load_config(args, spawned.url, levels, payload_format="json"), server=name)
            cpu_pct = 100 * (server_cpu_s(spawned.proc.pid) - cpu0) / (time.monotonic() - wall0)
            side = server_side(spawned.url) if spawned.command is None else {
                "mean_batch": float("nan"), "mean_batch_ms": float("nan")}
            out[name] = {**result.as_dict(), "server_rss_gib": server_rss_gib(spawned.proc.pid),
                         "server_cpu_pct": cpu_pct, **side}
            rows += result.rows
    return out, rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--frontends", type=int, help="HTTP front-end processes of the main batched server "
                                                       "(default: the server's choice for the host)")
    parser.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                        help="CUDA graphs in the main batched server (default: the server's choice)")
    parser.add_argument("--slo-ms", type=float, default=100.0,
                        help="servers' admission bound in expected wait (0: count bound only)")
    parser.add_argument("--variants", default="",
                        help="extra batched servers: comma list of fN, optionally +cg")
    parser.add_argument("--variant-concurrency", default="1,256", help="closed-loop levels for each variant")
    parser.add_argument("--litserve", action="store_true",
                        help="also run the LitServe peer (benchmarks/litserve_peer.py, our model behind "
                             "LitServe's batching) and our main server, both with JSON bodies, at "
                             "--variant-concurrency")
    parser.add_argument("--concurrency", default="1,2,4,8,16,32,64,128,256")
    parser.add_argument("--naive-concurrency", default="1,16,256")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--max-queue", type=int, default=4096)
    parser.add_argument("--captions", type=int, default=1, help="captions per request (1: a request is one sample)")
    parser.add_argument("--offline-batch", type=int, default=512)
    parser.add_argument("--offline-steps", type=int, default=20)
    parser.add_argument("--window-s", type=float, default=5.0)
    parser.add_argument("--max-windows", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=8, help="load-generator processes")
    parser.add_argument("--overload-s", type=float, default=60.0, help="open loop at 2x capacity for this long (0 skips)")
    parser.add_argument("--overload-slo-ms", type=float, default=None,
                        help="run the overload against a fresh main server with this --slo-ms "
                             "(default: against the main server as swept)")
    parser.add_argument("--overload-max-queue", default=None,
                        help="run the overload against a fresh main server with this --max-queue (a count "
                             "bound: admitted requests in flight, as a closed loop of that many clients); "
                             "a comma list runs one fresh server per count, in turn")
    parser.add_argument("--slo", default="p99=150ms")
    parser.add_argument("--dataset", help="dataset dir for real JPEGs (default: generated 320x240 JPEGs)")
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--set", dest="server_set", action="append", default=[], metavar="KEY=VALUE",
                        help="a serve.* field for every server started, e.g. serve.max_captions=4 (repeatable)")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model, CPU, seconds-long run")
    parser.add_argument("--out", default="runs/serve_load")
    parser.add_argument("--max-captions", type=int, default=0,
                        help="servers' max_captions (0: the default 16); warm-up pads up to max_batch x this")
    argv = list(argv) if argv is not None else None
    import sys

    if "--cpu-smoke" in (argv if argv is not None else sys.argv[1:]):
        parser.set_defaults(**SMOKE_DEFAULTS)  # explicit flags still win
    args = parser.parse_args(argv)

    from mmscale.bench.load import bench_load, format_table
    from mmscale.bench.load_spawn import SpawnedServer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    levels = [int(x) for x in args.concurrency.split(",")]
    naive_levels = [int(x) for x in args.naive_concurrency.split(",")]
    from mmscale.bench.environment import fingerprint

    results: dict = {"args": vars(args), "environment": fingerprint()}
    results["offline"] = offline = offline_throughput(args)
    print(f"offline match forward: {offline['samples_per_s']:.0f} samples/s at batch {offline['batch']}")

    bounded_overload = bool(overload_bounds(args, overload_counts(args)[0]))  # else: overload the swept server
    rows = []
    for server, server_levels in (("batched", levels), ("naive", naive_levels)):
        with SpawnedServer(serve_args(args, server)) as spawned:
            cpu0, wall0, side0 = server_cpu_s(spawned.proc.pid), time.monotonic(), server_side(spawned.url)
            result = bench_load(load_config(args, spawned.url, server_levels), server=server)
            cpu_pct = 100 * (server_cpu_s(spawned.proc.pid) - cpu0) / (time.monotonic() - wall0)
            results[server] = {**result.as_dict(), "server_rss_gib": server_rss_gib(spawned.proc.pid),
                               "server_cpu_pct": cpu_pct, **side_during(spawned.url, side0)}
            rows += result.rows
            if server == "batched" and args.overload_s > 0 and not bounded_overload:
                results["overload"] = overload(args, spawned, result)
        if server == "batched" and args.overload_s > 0 and bounded_overload:
            # a fresh server of the same build per admission bound, each at 2x the capacity just measured
            for count in overload_counts(args):
                with SpawnedServer(serve_args(args, "batched") + overload_bounds(args, count)) as spawned:
                    run = overload(args, spawned, result)
                run.update(slo_ms=args.overload_slo_ms, max_queue=count)
                results.setdefault("overloads", []).append(run)
            results["overload"] = results["overloads"][0]
    write_json(out / "serve_load.json", results, indent=1, default=str)

    variants = [v for v in args.variants.split(",") if v]
    variant_levels = [int(x) for x in args.variant_concurrency.split(",")]
    for spec in variants:
        frontends, cuda_graphs = parse_variant(spec)
        with SpawnedServer(serve_args(args, "batched", frontends, cuda_graphs)) as spawned:
            cpu0, wall0, side0 = server_cpu_s(spawned.proc.pid), time.monotonic(), server_side(spawned.url)
            result = bench_load(load_config(args, spawned.url, variant_levels), server=spec)
            cpu_pct = 100 * (server_cpu_s(spawned.proc.pid) - cpu0) / (time.monotonic() - wall0)
            results.setdefault("variants", {})[spec] = {
                **result.as_dict(), "frontends": frontends, "cuda_graphs": cuda_graphs,
                "server_rss_gib": server_rss_gib(spawned.proc.pid), "server_cpu_pct": cpu_pct,
                **side_during(spawned.url, side0)}
            rows += result.rows
        write_json(out / "serve_load.json", results, indent=1, default=str)
    if args.litserve:
        peers, peer_rows = json_peers(args, variant_levels)
        results.setdefault("variants", {}).update(peers)
        rows += peer_rows
        write_json(out / "serve_load.json", results, indent=1, default=str)

    summary = ratios(results, levels, naive_levels)
    results["summary"] = summary
    results["variant_summary"] = variant_lines = variant_ratios(results, naive_levels)
    write_json(out / "serve_load.json", results, indent=1, default=str)
    print(format_table(rows))
    variant_warnings = [w for v in results.get("variants", {}).values() for w in v["warnings"]]
    for warning in results["batched"]["warnings"] + results["naive"]["warnings"] + variant_warnings:
        print(f"warning: {warning}")
    if variants or args.litserve:
        print()
        print(format_variants(variant_lines))
    print()
    for key, value in summary.items():
        print(f"{key:<44} {value:.3f}" if isinstance(value, float) else f"{key:<44} {value}")
    if len(results.get("overloads", [])) > 1:
        print()
        print(format_overloads(results["overloads"]))
    return 0


def format_overloads(runs: list[dict]) -> str:
    """One line per overload server: its bounds, what it served and refused, admitted p99 vs unloaded."""
    head = (f"{'max_queue':>9} {'slo_ms':>12} {'offered/s':>10} {'served/s':>9} {'refused':>8} "
            f"{'refusal p99 ms':>14} {'admitted p99 ms':>15} {'/ unloaded p99':>14}")
    out = [head, "-" * len(head)]
    for o in runs:
        row = o["row"]
        served = row["throughput_per_s"]
        out.append(f"{str(o['max_queue'] or '-'):>9} {str(o['slo_ms'] or '-'):>12} "
                   f"{2 * o['capacity_req_per_s']:>10.0f} {served:>9.0f} {o['rejected_frac']:>8.1%} "
                   f"{row.get('refused_p99_ms', float('nan')):>14.1f} {row['p99_ms']:>15.1f} "
                   f"{o['admitted_p99_over_unloaded']:>13.2f}x")
    return "\n".join(out)


def variant_ratios(results: dict, naive_levels) -> list[dict]:
    """One line per server (main batched first, then each variant): p50 at the lowest level, req/s and
    p99 at the highest, and the ratios to the naive server (same level) and to offline throughput."""
    def closed(rows, c):
        return next((r for r in rows if r["mode"] == "closed" and r["concurrency"] == c), None)

    main = f"f{results['args']['frontends'] or 'auto'}" + ("+cg" if results["args"]["cuda_graphs"] else "")
    servers = [(f"batched {main}", results["batched"])] + list(results.get("variants", {}).items())
    lines = []
    for name, res in servers:
        levels = sorted(r["concurrency"] for r in res["rows"] if r["mode"] == "closed")
        low, top = closed(res["rows"], levels[0]), closed(res["rows"], levels[-1])
        naive = closed(results["naive"]["rows"], levels[-1]) if levels[-1] in naive_levels else None
        lines.append({"server": name, "low_c": levels[0], "p50_ms_low": low["p50_ms"], "top_c": levels[-1],
                      "req_per_s_top": top["throughput_per_s"], "p99_ms_top": top["p99_ms"],
                      "over_naive": top["throughput_per_s"] / max(naive["throughput_per_s"], 1e-9) if naive else None,
                      "over_offline": top["throughput_per_s"] / results["offline"]["samples_per_s"],
                      "mean_batch": res["mean_batch"], "mean_batch_ms": res["mean_batch_ms"],
                      "server_cpu_pct": res["server_cpu_pct"]})
    return lines


def format_variants(lines: list[dict]) -> str:
    head = (f"{'server':<14} {'p50 ms @low c':>14} {'req/s @top c':>13} {'p99 ms @top c':>14} "
            f"{'/ naive':>8} {'/ offline':>9} {'mean batch':>10} {'fwd ms':>7} {'srv cpu%':>9}")
    out = [head, "-" * len(head)]
    for v in lines:
        over_naive = f"{v['over_naive']:.1f}x" if v["over_naive"] is not None else "-"
        out.append(f"{v['server']:<14} {v['p50_ms_low']:>8.2f} c={v['low_c']:<3} {v['req_per_s_top']:>7.0f} "
                   f"c={v['top_c']:<3} {v['p99_ms_top']:>8.1f} c={v['top_c']:<3} {over_naive:>8} "
                   f"{v['over_offline']:>8.1%} {v['mean_batch']:>10.1f} {v['mean_batch_ms']:>7.1f} "
                   f"{v['server_cpu_pct']:>9.0f}")
    return "\n".join(out)


def overload(args, spawned, sweep) -> dict:
    """Open loop at 2x the best sweep throughput: admitted requests' p99 vs unloaded, rejections, RSS."""
    from mmscale.bench.load import bench_load

    capacity = max(r.throughput_per_s for r in sweep.rows)
    rss_before = server_rss_gib(spawned.proc.pid)
    cfg = load_config(args, spawned.url, [], rates=[2 * capacity], window_s=args.overload_s, max_windows=1)
    cfg.warmup_s = 0
    cfg.max_requests = max(cfg.max_requests, int(1.2 * 2 * capacity * args.overload_s))  # load for the whole window
    (row,) = bench_load(cfg, server="batched", progress=False).rows
    rss_after = server_rss_gib(spawned.proc.pid)
    unloaded = next(r for r in sweep.rows if r.concurrency == min(x.concurrency for x in sweep.rows))
    at_capacity = max(sweep.rows, key=lambda r: r.throughput_per_s)
    rejected = sum(v for k, v in row.errors_by_status.items() if k in ("503", "429"))
    return {"row": asdict(row), "capacity_req_per_s": capacity, "unloaded_p99_ms": unloaded.p99_ms,
            "admitted_p99_over_unloaded": row.p99_ms / unloaded.p99_ms,
            "capacity_p99_ms": at_capacity.p99_ms, "admitted_p99_over_capacity_p99": row.p99_ms / at_capacity.p99_ms,
            "rejected_frac": rejected / max(row.requests, 1),
            "other_errors": {k: v for k, v in row.errors_by_status.items() if k not in ("503", "429")},
            "server_alive": spawned.proc.poll() is None, "rss_before_gib": rss_before, "rss_after_gib": rss_after}


def ratios(results: dict, levels, naive_levels) -> dict:
    def row(server, c):
        return next((r for r in results[server]["rows"] if r["mode"] == "closed" and r["concurrency"] == c), None)

    common = set(levels) & set(naive_levels)  # compare at the highest level both ran, else each at its top
    top, naive_top = (max(common), max(common)) if common else (max(levels), max(naive_levels))
    ours, naive, one = row("batched", top), row("naive", naive_top), row("batched", min(levels))
    ratio_key = f"ours / naive at c={top}" if top == naive_top else f"ours at c={top} / naive at c={naive_top}"
    out = {
        f"ours req/s at c={top}": ours["throughput_per_s"],
        f"ours p99 ms at c={top}": ours["p99_ms"],
        f"naive req/s at c={naive_top}": naive["throughput_per_s"],
        ratio_key: ours["throughput_per_s"] / max(naive["throughput_per_s"], 1e-9),
        "best ours req/s / offline samples/s": max(r["throughput_per_s"] for r in results["batched"]["rows"])
        / results["offline"]["samples_per_s"],
        f"ours p50 ms at c={min(levels)}": one["p50_ms"],
        "ours server CPU % over the sweep": results["batched"]["server_cpu_pct"],
        "ours mean batch / mean batch ms": f"{results['batched']['mean_batch']:.1f} / "
                                           f"{results['batched']['mean_batch_ms']:.1f}",
        "naive mean batch ms": results["naive"]["mean_batch_ms"],
    }
    if "overload" in results:
        o = results["overload"]
        out.update({"overload admitted p99 ms": o["row"]["p99_ms"],
                    "overload admitted p99 / unloaded p99": o["admitted_p99_over_unloaded"],
                    "overload admitted p99 / p99 at capacity": o["admitted_p99_over_capacity_p99"],
                    "overload rejected fraction": o["rejected_frac"],
                    "overload refusal p99 ms": o["row"].get("refused_p99_ms", float("nan")), "overload server alive": o["server_alive"],
                    "overload server RSS GiB before -> after": f"{o['rss_before_gib']:.2f} -> {o['rss_after_gib']:.2f}"})
    return out


if __name__ == "__main__":
    raise SystemExit(main())
