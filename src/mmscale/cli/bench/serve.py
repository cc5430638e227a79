"""``mmscale bench serve``: the serving benchmark in one go (offline throughput, our batched server
against the naive one, overload, the LitServe peer)."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import asdict, fields

from mmscale.bench.load.runner import format_table
from mmscale.bench.rows import serve_rows
from mmscale.bench.serving.config import SMOKE_DEFAULTS, ServeBenchConfig, smoke_config
from mmscale.bench.serving.offline import OFFLINE_BATCH, OFFLINE_STEPS, SMOKE_OFFLINE_BATCH, SMOKE_OFFLINE_STEPS
from mmscale.bench.serving.run import RESULTS_FILE, bench_serving
from mmscale.bench.serving.summary import format_peers, format_summary
from mmscale.cli.bench.args import at_least, number_list
from mmscale.cli.out import add_csv_argument, save_rows
from mmscale.extras import require_extra

ORDER = 62
DEFAULT = ServeBenchConfig()

EPILOG = f"""examples:
  mmscale bench serve --preset base --out runs/serve_load                     (GPU, full sweep)
  mmscale bench serve --cpu-smoke --out runs/serve_smoke                      (CPU, seconds)
  mmscale bench serve --preset base --out runs/serve --concurrency 1,256 \\
      --naive-concurrency 1,256 --window-s 3 --max-windows 4 --litserve   (with the LitServe peer)

--frontends / --cuda-graphs / --slo-ms set the main batched server (the one the overload run hits);
left out, the server chooses for its host. A request is one JPEG and one caption; the offline
forward runs batch {OFFLINE_BATCH}, {OFFLINE_STEPS} timed steps.
{textwrap.fill("--cpu-smoke sets " + ", ".join(f"{k}={v}" for k, v in SMOKE_DEFAULTS.items())
               + f" (flags given still win), one CPU thread per server and an offline batch of "
               f"{SMOKE_OFFLINE_BATCH}, {SMOKE_OFFLINE_STEPS} timed steps.", 100)}

Prints the load table, then with --litserve one line per server (p50 at the lowest level, req/s and
p99 at the highest, ratios to naive and to offline), then the summary with the ratios the targets
are stated in: ours / naive at the highest concurrency, ours / offline batch throughput, p50 at
concurrency 1, and under overload (open loop at 2x the measured capacity) the admitted p99 against
the unloaded p99. Writes OUT/{RESULTS_FILE}."""


def text_of(parse):
    """``type=`` that checks a flag's text with ``parse`` and keeps the text (the config holds it as given)."""
    def check(text: str) -> str:
        parse(text)
        return text

    check.__name__ = parse.__name__
    return check


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="our batched server vs the naive one and offline throughput, overload, LitServe",
        description="Start each server fresh and measure it with real HTTP load: the model's offline batch "
                    "throughput, our batched server and the naive one-forward-per-request server under the same "
                    "closed-loop sweep, an overload run at 2x the measured capacity, then optionally the LitServe "
                    "peer.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    # argument_default=SUPPRESS: a flag not given stays out of ``args``, so that --cpu-smoke's settings
    # fill exactly those and the config's defaults the rest
    levels = text_of(number_list(int, 1))

    def add(flag: str, help: str, **kwargs) -> None:
        default = getattr(DEFAULT, flag.lstrip("-").replace("-", "_"))
        shown = "" if default in (None, "", False) else f" (default {default})"
        parser.add_argument(flag, help=help + shown, **kwargs)

    add("--preset", "model preset of every server and of the offline forward")
    add("--checkpoint", "a trained checkpoint instead of the preset's random weights")
    add("--device", "auto, cpu or cuda")
    add("--frontends", "HTTP front-end processes of the main batched server (default: the server's choice)",
        type=at_least(1))
    add("--cuda-graphs", "CUDA graphs in the main batched server (default: the server's choice)",
        action=argparse.BooleanOptionalAction)
    add("--slo-ms", "servers' admission bound in expected wait (0: count bound only)", type=float)
    add("--litserve", "also run the LitServe peer (our model behind LitServe's batching) and our main server, "
                      "both with JSON bodies, at the lowest and the highest --concurrency level", action="store_true")
    add("--concurrency", "closed-loop levels of the main batched server", type=levels)
    add("--naive-concurrency", "closed-loop levels of the naive server", type=levels)
    add("--max-batch", "servers' largest batch", type=at_least(1))
    add("--max-wait-ms", "servers' wait for a batch to fill", type=float)
    add("--max-queue", "servers' admission bound in requests", type=at_least(1))
    add("--window-s", "measurement window of each level, seconds", type=float)
    add("--max-windows", "window budget per level", type=at_least(1))
    add("--max-requests", "request budget per window", type=at_least(1))
    add("--processes", "load-generator processes", type=at_least(1))
    add("--overload-s", "open loop at 2x capacity against the main server for this long (0 skips)", type=float)
    add("--slo", "latency objective of the load rows")
    add("--dataset", "dataset dir for real JPEGs (default: generated 320x240 JPEGs)")
    add("--cpu-smoke", "tiny model, CPU, seconds-long run", action="store_true")
    add("--out", "run folder")
    add_csv_argument(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    require_extra("serve", "mmscale bench serve")  # the servers it spawns and the load generator
    names = {f.name for f in fields(ServeBenchConfig)}
    cfg = smoke_config(**{k: v for k, v in vars(args).items() if k in names})
    results, rows = bench_serving(cfg)
    save_rows(args, cfg.out, serve_rows(results, {k: v for k, v in asdict(cfg).items() if k != "out"}))
    print(format_table(rows))
    peers = results.get("peers", {}).values()
    for warning in results["batched"]["warnings"] + results["naive"]["warnings"] + [
            w for p in peers for w in p["warnings"]]:
        print(f"warning: {warning}")
    if cfg.litserve:
        print()
        print(format_peers(results["peer_summary"]))
    print()
    print(format_summary(results["summary"]))
    return 0
