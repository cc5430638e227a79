"""``mmscale bench decode-auto``: training with ``data.decode=auto`` against both fixed input paths."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmscale.bench.decode.auto import RESULTS_FILE, DecodeAutoConfig, bench_decode_auto
from mmscale.bench.decode.partners import KNOWN_PATHS, PATHS
from mmscale.bench.rows import decode_auto_rows
from mmscale.cli.bench.args import at_least, name_list, number_list
from mmscale.cli.out import add_out_arguments, run_config, save_rows
from mmscale.strict_json import dumps

ORDER = 12

EPILOG = f"""examples:
  mmscale bench decode-auto --out runs/decode_auto data.num_workers=16 train.compile=false
                                                        (GPU, eager, 4.6 min on H100)
  mmscale bench decode-auto --out runs/da data.num_workers=16 \\
      --paths synthetic_bf16_step_graph,gpu_bf16_step_graph,synthetic_bf16,gpu_bf16
  mmscale bench decode-auto --preset tiny --device cpu --steps 40 --synth 256 --cpu-stand-in \\
      --probe-steps 2,4 --out runs/da data.num_workers=1 data.image_size=32 model.image_size=32 \\
      train.batch_size=8                                (CPU smoke)

--paths: cpu, gpu, auto (auto's ratios need all three); gpu_bf16 (gpu with train.weights=bf16),
gpu_bf16_step_graph (that and train.step_graph=true), cpu_bf16, cpu_bf16_step_graph (the same with
decode=cpu); synthetic, synthetic_bf16, synthetic_bf16_step_graph: the same loop on one
device-resident batch, the partners of the cpu* and gpu* runs of the same settings;
synthetic_no_monitor: synthetic with the hardware monitor off (with synthetic: the monitor's
overhead on the step); cpu_bf16_per_epoch, gpu_bf16_per_epoch and their _step_graph_per_epoch
forms: the loader iterated once per epoch instead of one endless iteration.

Steady state: the steps after the longest the probe can take, the same steps in every run. With
torch.compile the first run also pays the cold compile: compare the steady-state columns then.
Each run's row has its hardware monitor summary and the steady state's means of the training
thread's CPU share and run-queue wait, host CPU, SM clock and power: a from-files step slower than
its partner's while its thread waits for a core is a starved loop thread, not slow input.
--cpu-stand-in: without CUDA, the gpu path's own code (workers ship JPEG bytes, the main process
batch-decodes) runs on the CPU, so the probe and the switch can be exercised.
Writes OUT/{RESULTS_FILE}; the table ends with auto's ratio to the faster fixed path."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "decode-auto", help="training from JPEG files: data.decode=auto against decode=cpu and gpu",
        description="Train the preset's model from JPEG files once per input path, in one process, and compare "
                    "samples/s and data-wait share; whether auto kept the faster path, with the figures its "
                    "probe measured; and each from-files run against synthetic device batches of the same settings.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = DecodeAutoConfig()
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides for every run (data.*, model.*, train.*)")
    parser.add_argument("--preset", default=default.preset, help=f"model and training preset (default {default.preset})")
    parser.add_argument("--data", default="", help="JPEG dataset: manifest or directory (default: synthesize)")
    parser.add_argument("--synth", type=at_least(1), default=default.synth,
                        help=f"samples to synthesize when --data is not given (default {default.synth})")
    add_out_arguments(parser, f"run folder (default {default.out})", default=default.out)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=at_least(1), default=default.steps,
                        help=f"training steps per run (default {default.steps})")
    parser.add_argument("--max-run-s", type=float, default=default.max_run_s,
                        help=f"time limit of each run's loop (default {default.max_run_s:g})")
    parser.add_argument("--monitor-interval-s", type=float, default=default.monitor_interval_s,
                        help=f"hardware monitor's sampling interval (default {default.monitor_interval_s})")
    parser.add_argument("--cpu-stand-in", action="store_true", help="without CUDA, run the gpu path's code on CPU")
    parser.add_argument("--paths", type=name_list(KNOWN_PATHS, "path"), default=list(PATHS),
                        help=f"runs to make, in order (default {','.join(PATHS)}; see below)")
    parser.add_argument("--probe-steps", type=probe_steps, default=None, metavar="WARMUP,TIMED",
                        help="auto's probe: untimed and timed steps per path (default: sized from the workers)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def probe_steps(text: str) -> tuple[int, int]:
    values = number_list(int, 1)(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected WARMUP,TIMED (two integers), got {text!r}")
    return values[0], values[1]


probe_steps.__name__ = "WARMUP,TIMED"


def run(args) -> int:
    cfg = DecodeAutoConfig(preset=args.preset, overrides=list(args.overrides), data=args.data, synth=args.synth,
                           out=args.out, device=args.device, steps=args.steps, max_run_s=args.max_run_s,
                           monitor_interval_s=args.monitor_interval_s, cpu_stand_in=args.cpu_stand_in,
                           paths=args.paths, probe_steps=args.probe_steps)
    result = bench_decode_auto(cfg, say=(lambda line: None) if args.json else (lambda line: print(line, flush=True)))
    save_rows(args, cfg.out, decode_auto_rows(result, run_config(args)))
    if args.json:
        print(dumps(result, indent=1))
        return 0
    print_result(result, Path(cfg.out) / RESULTS_FILE)
    return 0


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_result(result: dict, path: Path) -> None:
    rows, summary = result["runs"], result["summary"]
    if summary.get("auto_kept") is not None:
        print_table(rows, summary)
    else:
        print_rows(rows)
    for key, ratio in summary["files_vs_synthetic"].items():
        files, partner = key.removesuffix("_steady").split("_vs_")
        print(f"{'from files / synthetic, steady: ' + files:<46} {ratio:.3f}x (of {partner})")
    if "monitor_overhead_pct" in summary:
        print(f"{'monitor overhead, steady (on vs off)':<46} {summary['monitor_overhead_pct']:+.2f}% of the step "
              f"({summary['monitor_samples']} samples at {fmt(summary['monitor_achieved_hz'], '.1f')} Hz)")
    print(f"\nwall {summary['wall_s']:.0f} s; JSON: {path}")


def print_rows(rows: dict) -> None:
    print(f"\n{'decode':<11} {'kept':<5} {'steps':>6} {'samples/s':>10} {'wait %':>7} "
          f"{'steady samples/s':>17} {'steady wait %':>14} {'loop thread CPU/queued %':>25} {'SM MHz':>7}")
    for path, r in rows.items():
        if r.get("skipped"):
            print(f"{path:<11} skipped: {r['skipped']}")
            continue
        thread = (fmt(r.get("steady_main_thread_cpu_pct"), ".0f") + " / "
                  + fmt(r.get("steady_main_thread_wait_pct"), ".1f"))
        print(f"{path:<11} {r['kept']:<5} {r['steps']:>6} {fmt(r['samples_per_s'], ',.1f'):>10} "
              f"{fmt(r['data_wait_pct'], '.1f'):>7} {fmt(r['steady_samples_per_s'], ',.1f'):>17} "
              f"{fmt(r['steady_data_wait_pct'], '.1f'):>14} {thread:>25} "
              f"{fmt(r.get('steady_gpu0_sm_clock_mhz'), '.0f'):>7}")


def print_table(rows: dict, summary: dict) -> None:
    print_rows(rows)
    probe = rows["auto"].get("probe", {})
    if "step_ms" in probe:
        per_path = ", ".join(f"{p} {fmt(v, '.2f')} ms/step (wait {fmt(probe['data_wait_pct'].get(p), '.1f')}%, "
                             f"{probe['timed_steps'][p]} timed after {probe['warmup_steps'][p]} untimed)"
                             for p, v in probe["step_ms"].items())
        print(f"\nauto probe at step {probe['decided_at_step']}: {per_path}")
    print(f"auto: {probe.get('path', '-')} -- {probe.get('reason', '-')}")
    gap = summary["fixed_gap_frac"]
    print(f"\n{'faster fixed path (steady)':<46} {summary['faster_fixed_path']}"
          f" (ahead by {fmt(None if gap is None else 100 * gap, '.1f')}%)")
    print(f"{'auto kept the faster path (or a 2% tie)':<46} {'yes' if summary['auto_kept_the_faster'] else 'NO'}"
          f" ({summary['auto_kept']})")
    print(f"{'auto / faster fixed, whole run':<46} {fmt(summary['auto_vs_faster_fixed_samples_per_s'], '.3f')}x")
    print(f"{'auto / fixed run of the path it kept, steady':<46} "
          f"{fmt(summary['auto_vs_fixed_same_path_steady'], '.3f')}x")
    print(f"{'auto / faster fixed, steady state':<46} "
          f"{fmt(summary['auto_vs_faster_fixed_steady_samples_per_s'], '.3f')}x")
