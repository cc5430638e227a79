"""``mmscale serve``: the inference server (dynamic batching, or the naive peer)."""

from __future__ import annotations

import argparse
import os

from mmscale.config.load import load_config
from mmscale.data.tokenizer import ENV_VAR as TOKENIZER_ENV
from mmscale.errors import ConfigError
from mmscale.extras import require_extra
from mmscale.serve.config import ServeConfig
from mmscale.serve.defaults import resolve
from mmscale.serve.monitoring import prepare_monitor_file
from mmscale.serve.run import build_predictor, check_checkpoint, check_device, check_port_free, serve

ORDER = 30

FLAGS = {  # flag -> ServeConfig field
    "host": "host", "port": "port", "server": "server", "max_batch": "max_batch",
    "max_wait_ms": "max_wait_ms", "max_queue": "max_queue", "slo_ms": "slo_ms", "token": "token",
    "device": "device", "max_body_bytes": "max_body_bytes", "max_image_pixels": "max_image_pixels",
    "max_captions": "max_captions", "cpu_threads": "cpu_threads", "frontends": "frontends",
    "cuda_graphs": "cuda_graphs",
}


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``serve`` and ``bench load --spawn``."""
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", metavar="PATH",
                       help="training checkpoint to serve (weights + model config): the checkpoint.pt "
                            "that mmscale train writes in its --out folder, e.g. runs/train/checkpoint.pt, or the "
                            "checkpoint/ folder of a torchrun job")
    model.add_argument("--preset", help="serve random-init weights of this preset (tiny, base, ...)")
    parser.add_argument("--config", help="TOML file whose [serve] table overrides the defaults")
    parser.add_argument("--server", choices=["batched", "naive"], help="batched (default) or the naive one-forward-per-request peer")
    parser.add_argument("--max-batch", type=int, help="most requests per forward pass (default: 256 on CUDA, 32 on CPU)")
    parser.add_argument("--max-wait-ms", type=float,
                        help="longest a request waits for its batch to fill (default: 1 on CUDA, 2 on CPU)")
    parser.add_argument("--slo-ms", type=float,
                        help="answer 503 at once when the requests ahead would take longer than this at the "
                             "measured rate (default 100; 0: only --max-queue bounds admission)")
    parser.add_argument("--max-queue", type=int, help="admitted requests beyond which the server answers 503 (default 4096)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="auto (default): cuda when present")
    parser.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                        help="replay a CUDA graph per padded batch shape (default: on with CUDA; refused on CPU)")
    parser.add_argument("--frontends", type=int,
                        help="HTTP front-end processes feeding one model process (default: half the cores, "
                             "at most 8, on CUDA; 1 on CPU)")
    parser.add_argument("--max-body-bytes", type=int, help="largest request body; 413 beyond it (default 8 MiB)")
    parser.add_argument("--max-image-pixels", type=int,
                        help="largest image, width x height, read from its header; 413 beyond it (default 4096x4096)")
    parser.add_argument("--max-captions", type=int, help="most captions in one request; 400 beyond it (default 16)")
    parser.add_argument("--tokenizer", help="tokenizer.json or vocab.txt, the same as $MMSCALE_TOKENIZER "
                                            "(default: $MMSCALE_TOKENIZER, then the shipped BERT-uncased vocab)")
    parser.add_argument("--cpu-threads", type=int, help="torch threads on CPU (default: torch's)")
    parser.add_argument("--monitor", metavar="FILE",
                        help="write the server's hardware timeline here while it serves (JSONL, one line per "
                             "sample, emptied at start): its CPU and RSS, host CPU and RAM, per-GPU "
                             "utilization, clock, power, temperature; a summary line at shutdown")
    parser.add_argument("--monitor-interval", type=float, metavar="SECONDS",
                        help="seconds between --monitor samples (default 0.2)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any serve.* or model.* field, e.g. --set model.image_size=64 (repeatable)")


def build_config(args):
    overrides = [o for o in args.overrides if not o.startswith("model.")]
    for flag, field in FLAGS.items():
        value = getattr(args, flag, None)
        if isinstance(value, bool):
            overrides.append(f"serve.{field}={str(value).lower()}")
        elif value is not None:
            overrides.append(f"serve.{field}={value!r}" if isinstance(value, str) else f"serve.{field}={value}")
    if getattr(args, "insecure", False):
        overrides.append("serve.insecure=true")
    preset = getattr(args, "preset", None)
    return load_config(ServeConfig, preset=preset, file=getattr(args, "config", None),
                       overrides=[fix_quotes(o) for o in overrides], section="serve")


def fix_quotes(override: str) -> str:
    """``repr`` gives single quotes; TOML strings want double quotes."""
    key, _, value = override.partition("=")
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = '"' + value[1:-1].replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{key}={value}"


def run(args) -> int:
    require_extra("serve", "mmscale serve")  # the server it starts needs fastapi and uvicorn

    if args.tokenizer:
        os.environ[TOKENIZER_ENV] = args.tokenizer  # read by this process and the front ends it starts
    cfg = resolve(build_config(args))
    cfg.validate()
    if not args.checkpoint and not args.preset:
        raise ConfigError("serve.model", "give --checkpoint PATH or --preset NAME (e.g. --preset tiny)")
    # everything that can be refused without the model is, before the model is built
    if args.checkpoint:
        check_checkpoint(args.checkpoint)
    check_device(cfg)
    check_port_free(cfg)
    prepare_monitor_file(args.monitor)
    interval_s = 0.2 if args.monitor_interval is None else args.monitor_interval
    if interval_s <= 0:
        raise ConfigError("serve --monitor-interval", f"must be > 0, got {interval_s}")
    model_overrides = [o for o in args.overrides if o.startswith("model.")]
    predictor = build_predictor(cfg, args.checkpoint, args.preset, model_overrides)
    serve(cfg, predictor, monitor_file=args.monitor, monitor_interval_s=interval_s)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP with dynamic batching",
        description=(
            "Serve image-text matching and embeddings over HTTP (FastAPI + uvicorn).\n\n"
            "  mmscale serve --preset tiny                      # random-init tiny model on 127.0.0.1:8000\n"
            "  mmscale serve --checkpoint runs/train/checkpoint.pt --max-batch 64 --max-wait-ms 3\n"
            "                                      # what mmscale train wrote (its --out)\n"
            "  mmscale serve --preset base --host 0.0.0.0 --token SECRET\n"
            "  mmscale serve --checkpoint runs/train/checkpoint.pt --slo-ms 50\n"
            "                                      # refuse (503 at once) what could not be served in 50 ms\n\n"
            "On CUDA the defaults are front ends from the cores, CUDA graphs, batches up to 256 after\n"
            "at most 1 ms; on CPU one process, batches up to 32 after at most 2 ms.\n\n"
            "Endpoints: POST /v1/match (body: the image file, ?caption=...&caption=...),\n"
            "POST /v1/embed/image, POST /v1/embed/text ({\"texts\": [...]}), GET /healthz, /readyz,\n"
            "/metrics (Prometheus), /docs (OpenAPI). SIGTERM drains in-flight requests, then exits.\n"
            "See docs/serving.md for payloads, limits and status codes."
        ),
        epilog=(
            "--monitor FILE writes the server's hardware timeline, one JSON line per sample as it is\n"
            "taken (every --monitor-interval seconds, default 0.2): t_s (seconds since the monitor\n"
            "started, just before the port is bound), cpu_pct (this process and its front ends, % of\n"
            "one core), sys_cpu_pct (whole host), rss_gib, avail_ram_gib, disk_read_mib_per_s,\n"
            "main_thread_cpu_pct and main_thread_wait_pct (the server's main thread: % of the time it\n"
            "ran, and % it was ready but waited for a free core; Linux), and for\n"
            "each GPU N gpuN_util_pct, gpuN_sm_clock_mhz, gpuN_power_w, gpuN_temp_c, gpuN_mem_used_gib,\n"
            "gpuN_energy_j. Read it while serving (tail -f FILE) or after; at shutdown one line sums it:\n"
            "  mmscale serve --preset tiny --monitor runs/serve/monitor.jsonl\n"
            "  hardware: N samples, SM clock LO-HI MHz, GPU LO-HI C, power LO-HI W, host CPU LO-HI%\n"
            "  (runs/serve/monitor.jsonl)             # printed at shutdown; GPU ranges when NVML sees one"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_server_options(parser)
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1; others need --token or --insecure)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000; 0 picks a free one)")
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on /v1/* and /metrics")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback host without --token")
    parser.set_defaults(run=run)
