"""``mmscale bench load``: closed/open-loop load against a server, with SLO goodput and capacity search."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmscale.bench.load.runner import LoadConfig, bench_load, format_table
from mmscale.bench.load.spawn import SpawnedServer
from mmscale.bench.rows import load_rows
from mmscale.cli.bench.args import at_least, number_list
from mmscale.cli.out import add_out_arguments, check_csv, out_file, run_config, save_rows
from mmscale.cli.serve import add_server_options
from mmscale.errors import ConfigError
from mmscale.extras import require_extra
from mmscale.monitor.brief import monitor_line, summarize_file
from mmscale.strict_json import dumps, write_json

ORDER = 60
LOAD_FILE = "load.json"

# argparse ``type=`` for the load levels: '' means none; anything else must be positive numbers
concurrency_levels = number_list(int, 1, allow_empty=True)
rate_levels = number_list(float, 0, exclusive=True, allow_empty=True)


def parse_levels(text, kind=int) -> list:
    """Levels from a flag value: already a list (parsed by argparse ``type=``) or comma-separated text."""
    if isinstance(text, list):
        return text
    return (concurrency_levels if kind is int else rate_levels)(text or "")


def run(args) -> int:
    require_extra("serve", "mmscale bench load")  # the load generator (aiohttp) and the server it spawns
    check_csv(args)

    cfg = LoadConfig(
        url=args.url or "", endpoint=args.endpoint, concurrencies=parse_levels(args.concurrency),
        rates=parse_levels(args.rates, float), window_s=args.window_s, max_windows=args.max_windows,
        tolerance=args.tolerance, max_requests=args.max_requests, processes=args.processes, slo=args.slo,
        search=args.search, token=args.token, dataset=args.dataset, payloads=args.payloads,
        captions_per_request=args.captions, timeout_s=args.timeout_s, warmup_s=args.warmup_s,
    )
    if not args.url and not args.spawn:
        raise ConfigError("--url", "give --url URL of a running server, or --spawn to start one")
    if args.url and args.monitor:
        raise ConfigError("--monitor", "records the server that --spawn starts; a server already running "
                                       "at --url records its own (mmscale serve --monitor FILE)")
    server_monitor = {}
    results_path = out_file(args.out, LOAD_FILE, ".json") if args.out else None
    if args.spawn:
        if args.monitor is None and args.out:  # a results file gets the server's timeline beside it
            args.monitor = default_monitor_file(results_path)
        serve_args = spawn_args(args)
        with SpawnedServer(serve_args) as server:
            cfg.url = server.url
            result = bench_load(cfg, server=args.server or "batched", progress=not args.json)
        if args.monitor:  # read after the server has drained and its sampler closed the file

            server_monitor = summarize_file(args.monitor)
    else:
        result = bench_load(cfg, server=args.label, progress=not args.json)
    doc = result.as_dict()
    if server_monitor:
        doc["server_monitor"] = server_monitor
    if args.out:
        write_json(results_path, doc, indent=1)
        save_rows(args, results_path.parent, load_rows(doc, run_config(args)))
    if args.json:
        print(dumps(doc, indent=1))
        return 0
    print(format_table(result.rows))
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(result.headline)
    if server_monitor:
        print(f"server {monitor_line(server_monitor)}")
    return 0


def default_monitor_file(out: str) -> str:
    """Where ``--out results.json`` puts the spawned server's timeline: ``results.server_monitor.jsonl``."""
    path = Path(out)
    return str(path.with_name(f"{path.stem if path.suffix == '.json' else path.name}.server_monitor.jsonl"))


def spawn_args(args) -> list[str]:
    """Forward the server options given to ``bench load`` to ``mmscale serve``."""
    out = []
    for name in ("checkpoint", "preset", "config", "server", "max_batch", "max_wait_ms", "max_queue", "slo_ms",
                 "device", "max_body_bytes", "max_image_pixels", "max_captions", "tokenizer", "cpu_threads",
                 "frontends", "monitor", "monitor_interval"):
        value = getattr(args, name, None)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    cuda_graphs = getattr(args, "cuda_graphs", None)
    if cuda_graphs is not None:
        out.append("--cuda-graphs" if cuda_graphs else "--no-cuda-graphs")
    if args.token:
        out += ["--token", args.token]
    for override in args.overrides:
        out += ["--set", override]
    if not args.checkpoint and not args.preset:
        out += ["--preset", "tiny"]
    return out


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "load",
        help="latency percentiles and throughput of a server under load",
        description=(
            "Send real HTTP load to a server: a closed-loop concurrency sweep and open-loop Poisson\n"
            "rates. Open-loop latency counts from each request's scheduled send time (no coordinated\n"
            "omission). Each level repeats windows until throughput and p99 agree within --tolerance.\n\n"
            "  mmscale bench load --spawn --preset tiny --concurrency 1,4,16 --rates 20,40\n"
            "  mmscale bench load --url http://127.0.0.1:8000 --slo p99=100ms --search concurrency\n"
            "  mmscale bench load --spawn --server naive --preset base --json --out naive.json\n"
            "  mmscale bench load --spawn --preset tiny --monitor server.jsonl  # the server's hardware timeline\n\n"
            "With --spawn and --out R.json the spawned server's hardware timeline goes to\n"
            "R.server_monitor.jsonl (unless --monitor names another file) and its summary into R.json."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="base URL of a running server (e.g. http://127.0.0.1:8000)")
    target.add_argument("--spawn", action="store_true", help="start `mmscale serve` on a free loopback port")
    parser.add_argument("--label", default="server", help="name for the rows with --url")
    parser.add_argument("--endpoint", default="match", choices=["match", "embed_image", "embed_text"],
                        help="what each request asks: /v1/match (image + captions, default), or one embedding")
    parser.add_argument("--concurrency", type=concurrency_levels, default="1,2,4,8,16,32,64,128,256",
                        help="closed-loop levels, comma-separated integers >= 1 ('' skips)")
    parser.add_argument("--rates", type=rate_levels, default="",
                        help="open-loop Poisson rates in req/s, comma-separated numbers > 0")
    parser.add_argument("--window-s", type=float, default=3.0, help="measurement window (default 3 s)")
    parser.add_argument("--max-windows", type=at_least(1), default=5,
                        help="window budget per level (default 5); a level is stable once 3 windows agree")
    parser.add_argument("--tolerance", type=float, default=0.10, help="stability tolerance (default 0.10)")
    parser.add_argument("--max-requests", type=at_least(1), default=100_000,
                        help="request budget per window, a bound against a very fast server (default 100000)")
    parser.add_argument("--processes", type=at_least(1), default=2, help="client processes (default 2)")
    parser.add_argument("--slo", default="p99=100ms",
                        help="latency objective (default p99=100ms): the best level meeting it is reported")
    parser.add_argument("--search", default="none", choices=["none", "concurrency", "rate"],
                        help="search the highest load meeting --slo")
    parser.add_argument("--dataset", help="dataset dir/manifest for real JPEGs + captions (default: generated)")
    parser.add_argument("--payloads", type=at_least(1), default=64, help="distinct requests to cycle through")
    parser.add_argument("--captions", type=at_least(1), default=1,
                        help="captions per /v1/match request (default 1, the request `bench serve` sends)")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="per-request timeout; counted as an error (default 30)")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="load before each level's first window, not measured (default 1)")
    parser.add_argument("--token", help="bearer token (also passed to a spawned server)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    add_out_arguments(parser, f"run folder: the rows go to RUN_DIR/{LOAD_FILE}", metavar="RUN_DIR")
    add_server_options(parser)
    parser.set_defaults(run=run)
