"""``mmscale bench pipeline``: the bottleneck analyzer (stage times, verdict, what-if variants)."""

from __future__ import annotations

import argparse

from rich.console import Console

from mmscale.bench.pipeline.analyze import GROUPS, PipelineConfig, bench_pipeline
from mmscale.bench.pipeline.table import render_tables
from mmscale.bench.rows import pipeline_rows
from mmscale.cli.out import add_out_arguments, run_config, save_rows
from mmscale.errors import ConfigError
from mmscale.strict_json import dumps

ORDER = 20

EPILOG = """examples:
  mmscale bench pipeline --preset tiny                       (CPU: a minute)
  mmscale bench pipeline --preset base --data data/coco --trace runs/pipeline/trace
  mmscale bench pipeline --preset base --only input,attention data.num_workers=16

What it prints: each stage's share of the step (data wait, host-to-device copy, decode, image /
text encoder and fusion forward, loss, backward, optimizer), the GPU idle fraction, a verdict
(input-bound / compute-bound / launch/host-bound) with the evidence, then the what-if variants
measured in the same run: naive loop vs DataLoader vs GPU decode, reference fusion fp32 vs fused
bf16, eager vs torch.compile vs the whole step as one CUDA graph, the monitor's own overhead, and
the attention sweep. Variants that cannot run on this machine are listed with the reason. Writes results.json and monitor.jsonl to
--out; --trace writes a torch.profiler trace that opens in https://ui.perfetto.dev."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="where the step time goes: stage times, GPU idle, verdict, what-if variants",
        description="Instrument the training step and tell whether it is input-, compute- or "
                    "launch-bound, with measured evidence and side-by-side fixes.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides over the preset (data.*, model.*, train.*)")
    parser.add_argument("--preset", default="tiny", choices=("tiny", "base"), help="tiny (CPU-sized) or base (the GPU model)")
    parser.add_argument("--data", default="", help="dataset manifest or directory (default: synthesize one)")
    parser.add_argument("--synth-samples", type=int, default=0,
                        help="size of the synthetic set made when --data is not given (default: enough)")
    add_out_arguments(parser, "output directory", default="runs/pipeline")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto (default): cuda when present")
    parser.add_argument("--batch-size", type=int, default=0, help="samples per step (default: preset's)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before each run (default 2)")
    parser.add_argument("--only", default="", help="comma list of parts besides the main run: "
                        "input,fusion_precision,compile,monitor_overhead,attention,workers")
    parser.add_argument("--text-lens", default="32,64,128,256,512", help="attention sweep text lengths")
    parser.add_argument("--batches", default="8,32,128", help="attention sweep batch sizes")
    parser.add_argument("--trace", default="", metavar="DIR", help="write a torch.profiler trace here")
    parser.add_argument("--compile-on-cpu", action="store_true", help="also run torch.compile on CPU")
    parser.add_argument("--json", action="store_true", help="print the JSON result instead of tables")
    parser.set_defaults(run=run)


def _ints(text: str, name: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(name, f"expected comma-separated integers, got {text!r}") from None


def run(args) -> int:
    cfg = PipelineConfig(
        preset=args.preset, overrides=list(args.overrides), data=args.data, out_dir=args.out,
        synth_samples=args.synth_samples,
        device=args.device, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
        groups=[g.strip() for g in args.only.split(",") if g.strip()] if args.only else list(GROUPS),
        attention_text_lens=_ints(args.text_lens, "--text-lens"), attention_batches=_ints(args.batches, "--batches"),
        trace_dir=args.trace, compile_on_cpu=args.compile_on_cpu)
    if args.json:
        result = bench_pipeline(cfg)
        save_rows(args, args.out, pipeline_rows(result.as_dict(), run_config(args)))
        print(dumps(result.as_dict(), default=str))
        return 1 if result.errors else 0

    console = Console()
    with console.status("analyzing the pipeline") as status:
        result = bench_pipeline(cfg, progress=lambda text: status.update(f"analyzing: {text}"))
    save_rows(args, args.out, pipeline_rows(result.as_dict(), run_config(args)))
    render_tables(result.as_dict(), console)
    return 1 if result.errors else 0
