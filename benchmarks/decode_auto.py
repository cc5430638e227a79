"""``decode=auto`` against both fixed input paths, in one process: train the preset's model from
JPEG files three times (decode=cpu, gpu, auto) and compare samples/s, data-wait share, and the
path auto kept with the figures its probe measured. JSON rows go to --out; the table ends with
auto's ratio to the faster fixed path (whole run, probe included, and steady state after it).
``--paths`` also takes the ``synthetic*`` runs: the same loop on one device-resident batch, the
partner a from-files run is held against (target: from files >= 95% of synthetic, steady state).
``synthetic_no_monitor`` beside ``synthetic`` measures the hardware monitor's cost on the step
(target < 1%); every run's monitor summary (clocks, power, host CPU) is in its JSON row, and
the steady state's means of the training thread's CPU share and run-queue wait, host CPU, SM
clock and power (``steady_*``) beside its samples/s: a from-files step slower than its partner's
while its thread waits for a core is a starved loop thread, not slow input.

    PYTHONPATH=src python3 benchmarks/decode_auto.py --out runs/da --paths \\
        synthetic_bf16_step_graph,gpu_bf16_step_graph,synthetic_bf16,gpu_bf16 data.num_workers=16

    PYTHONPATH=src python3 benchmarks/decode_auto.py --out runs/decode_auto data.num_workers=16 \\
        train.compile=false                                               (GPU, eager, 4.6 min on H100)
    PYTHONPATH=src python3 benchmarks/decode_auto.py --out runs/decode_auto_compiled data.num_workers=16
                                                      (GPU, the preset's torch.compile, 5.3 min on H100)
    PYTHONPATH=src python3 benchmarks/decode_auto.py --preset tiny --device cpu --steps 40 --synth 256 \\
        --cpu-stand-in --out runs/da data.num_workers=1 data.image_size=32 model.image_size=32 \\
        train.batch_size=8 --probe-steps 2,4                                        (CPU smoke)

Steady state: the steps after the longest the probe can take, the same steps in all three runs.
With torch.compile the first run also pays the cold compile (later runs hit Inductor's cache), so
its whole-run samples/s is low: compare the steady-state columns then.

``--cpu-stand-in``: without CUDA, the ``gpu`` path's own code (workers ship JPEG bytes, the main
process batch-decodes) runs on the CPU device, so the probe and the switch can be exercised.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

PATHS = ("cpu", "gpu", "auto")
EXTRA_PATHS = {  # --paths only
    "gpu_bf16": ["data.decode=gpu", "train.weights=bf16"],  # bf16 weights, fp32 copies in AdamW
    "gpu_bf16_step_graph": ["data.decode=gpu", "train.weights=bf16", "train.step_graph=true"],  # + one graph
    "cpu_bf16": ["data.decode=cpu", "train.weights=bf16"],  # the workers decode, bf16 weights
    "cpu_bf16_step_graph": ["data.decode=cpu", "train.weights=bf16", "train.step_graph=true"],  # + one graph
}
# --paths only: the same loop on one device-resident batch, repeated. No input cost, so these are
# the from-files runs' partners: "from files >= 95% of synthetic" compares a gpu* row with the
# synthetic* row of the same settings, in the same process
SYNTHETIC_PATHS = {
    "synthetic": [],
    "synthetic_bf16": ["train.weights=bf16"],
    "synthetic_bf16_step_graph": ["train.weights=bf16", "train.step_graph=true"],
    # the hardware monitor off: its overhead on the training step, against ``synthetic`` (monitor on,
    # the default 0.2 s interval), in the same process
    "synthetic_no_monitor": [],  # run with monitor_interval_s=0
}
CPU_SYNTHETIC_PATHS = ("synthetic", "synthetic_no_monitor")  # need no CUDA (the others are bf16 settings)
# --paths only: a from-files run whose loader is iterated once per epoch (workers idle from each
# epoch's last batch until the next epoch's first is asked for), as training read before it streamed
# across epochs: the endless stream's effect, side by side. Path settings, then the input path built
PER_EPOCH_PATHS = {
    "cpu_bf16_per_epoch": (["train.weights=bf16"], "cpu"),
    "gpu_bf16_per_epoch": (["train.weights=bf16"], "gpu"),
    "cpu_bf16_step_graph_per_epoch": (["train.weights=bf16", "train.step_graph=true"], "cpu"),
    "gpu_bf16_step_graph_per_epoch": (["train.weights=bf16", "train.step_graph=true"], "gpu"),
}
PARTNERS = {"gpu": "synthetic", "cpu": "synthetic", "gpu_bf16": "synthetic_bf16", "cpu_bf16": "synthetic_bf16",
            "gpu_bf16_step_graph": "synthetic_bf16_step_graph", "cpu_bf16_step_graph": "synthetic_bf16_step_graph",
            "cpu_bf16_per_epoch": "synthetic_bf16", "gpu_bf16_per_epoch": "synthetic_bf16",
            "cpu_bf16_step_graph_per_epoch": "synthetic_bf16_step_graph",
            "gpu_bf16_step_graph_per_epoch": "synthetic_bf16_step_graph"}
SAME_FRAC = 0.02  # fixed paths closer than this are a tie: either choice is right


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="config overrides (data.*, model.*, train.*)")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--data", default="", help="JPEG dataset: manifest or directory (default: synthesize)")
    parser.add_argument("--synth", type=int, default=4096, help="samples to synthesize when --data is empty")
    parser.add_argument("--out", type=Path, default=Path("runs/decode_auto"))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=560, help="training steps per run")
    parser.add_argument("--max-run-s", type=float, default=150.0, help="time limit of each run's loop")
    parser.add_argument("--monitor-interval-s", type=float, default=0.2, help="hardware monitor's sampling interval")
    parser.add_argument("--cpu-stand-in", action="store_true", help="without CUDA, run the gpu path's code on CPU")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help="runs to make, from cpu,gpu,auto, gpu_bf16 (gpu with "
                             "train.weights=bf16), gpu_bf16_step_graph (that and train.step_graph=true), cpu_bf16 and "
                             "cpu_bf16_step_graph (the same with decode=cpu); synthetic, synthetic_bf16, synthetic_bf16_step_graph: the same loop "
                             "on one device-resident batch (the partners of the cpu* and gpu* runs of the same settings); "
                             "synthetic_no_monitor: synthetic with the hardware monitor off (with synthetic: the "
                             "monitor's overhead on the step); "
                             "cpu_bf16_per_epoch, gpu_bf16_per_epoch and their _step_graph_per_epoch forms: cpu_bf16 / "
                             "gpu_bf16 (/ _step_graph) with the loader iterated once per epoch instead of one endless "
                             "iteration; "
                             "auto's ratios need cpu, gpu and auto")
    parser.add_argument("--probe-steps", default="", metavar="WARMUP,TIMED",
                        help="auto's probe: untimed and timed steps per path (default: sized from the workers)")
    return parser.parse_args(argv)


def prepare_data(args) -> str:
    if args.data:
        return args.data
    from mmscale.data.synth import synthesize

    out = args.out / "data"
    if not (out / "train.jsonl").is_file():
        synthesize(args.synth, out, progress=False)
    return str(out)


def load_job(args, data: str, decode: str, out_dir: Path):
    from mmscale.config.load import load_config
    from mmscale.train import TrainJob

    if decode in SYNTHETIC_PATHS:  # one injected loader under auto: exactly that one is built
        path_settings = ["data.decode=auto"] + SYNTHETIC_PATHS[decode]
    elif decode in PER_EPOCH_PATHS:
        path_settings = ["data.decode=auto"] + PER_EPOCH_PATHS[decode][0]
    else:
        path_settings = EXTRA_PATHS.get(decode, [f"data.decode={decode}"])
    fixed = [f"data.path={data}", f"train.out_dir={out_dir}", f"train.steps={args.steps}",
             f"train.time_limit_s={args.max_run_s}", "train.checkpoint_every=0", "train.eval_every=0",
             "train.eval_samples=1",  # evaluation is not what is compared: one sample skips it
             "train.log_every=10", "train.tensorboard=false"]
    if args.device != "auto":
        fixed.append(f"train.device={args.device}")
    # the path's own settings last: they define the run, and an override given for every run must
    # not undo them
    return load_config(TrainJob, preset=args.preset, overrides=fixed + list(args.overrides) + path_settings)


def stand_in_paths(decode: str, cuda: bool):
    """Injected loaders for ``--cpu-stand-in`` on a CPU run (None: the configured path as is)."""
    if cuda:
        return None, decode
    from mmscale.data.loader import build_loader

    paths = {"cpu": build_loader, "gpu": build_loader}
    if decode == "auto":
        return paths, "auto"
    return {decode: paths[decode]}, "auto"  # one injected path: auto builds exactly that one


class RepeatedBatch:
    """A loader's first batch, moved to the device once and yielded forever: the training loop
    with no input cost. Its skips are counted once (the batch is read once)."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device
        self.opened, self.sampler = loader.opened, loader.sampler

    @property
    def index_skips(self):
        return self.loader.index_skips

    def close(self) -> None:
        self.loader.close()

    def __iter__(self):
        import dataclasses

        from mmscale.data.skips import SkipCounter

        first = next(iter(self.loader)).to(self.device)
        yield first
        again = dataclasses.replace(first, skips=SkipCounter())
        while True:
            yield again


def per_epoch_paths(path: str) -> dict:
    """The injected loader of a *_per_epoch run: ``path``'s own loader, iterated once per epoch."""
    from mmscale.data.loader import build_loader

    def per_epoch(*args, **kwargs):
        return build_loader(*args, **{**kwargs, "decode": path, "endless": False})

    return {path: per_epoch}


def synthetic_paths(cuda: bool) -> dict:
    """The injected loader of a synthetic* run: the cpu path's first batch, repeated on the device."""
    import torch

    from mmscale.data.loader import build_loader

    def repeated(cfg, batch_size, tokenizer, device=None, **kwargs):
        loader = build_loader(cfg, batch_size, tokenizer, device=device, **{**kwargs, "decode": "cpu"})
        return RepeatedBatch(loader, torch.device("cuda") if cuda else torch.device("cpu"))

    return {"cpu": repeated}


def steady(rows: list[dict], batch: int, after_step: int) -> dict:
    """samples/s and data-wait share over the logged windows that end after ``after_step``."""
    prev, steps, time_ms, wait_ms = 0, 0, 0.0, 0.0
    for row in rows:
        if "time/step_ms" not in row:
            continue
        n = row["step"] - prev
        prev = row["step"]
        if row["step"] - n < after_step:
            continue
        steps += n
        time_ms += n * row["time/step_ms"]
        wait_ms += n * row["time/data_wait_ms"]
    if not time_ms:
        return {"steady_steps": 0, "steady_samples_per_s": None, "steady_data_wait_pct": None}
    return {"steady_steps": steps, "steady_samples_per_s": 1e3 * steps * batch / time_ms,
            "steady_data_wait_pct": 100 * wait_ms / time_ms}


def run_one(args, data: str, decode: str, cuda: bool, after_step: int) -> dict:
    import torch

    from mmscale.train import train

    out_dir = args.out / decode
    metrics = out_dir / "metrics.jsonl"
    if metrics.exists():
        metrics.unlink()  # rows of an earlier run would mix in
    if (decode in EXTRA_PATHS or decode in PER_EPOCH_PATHS
            or (decode in SYNTHETIC_PATHS and decode not in CPU_SYNTHETIC_PATHS)) and not cuda:
        return {"path": decode, "skipped": "needs CUDA"}
    if decode.startswith("gpu") and not cuda and not args.cpu_stand_in:
        return {"path": decode, "skipped": "no CUDA (pass --cpu-stand-in to run the gpu path's code on CPU)"}
    if decode in SYNTHETIC_PATHS:
        paths, config_decode = synthetic_paths(cuda), decode
    elif decode in PER_EPOCH_PATHS:
        paths, config_decode = per_epoch_paths(PER_EPOCH_PATHS[decode][1]), decode
    else:
        paths, config_decode = (None, decode) if cuda or not args.cpu_stand_in else stand_in_paths(decode, cuda)
    job = load_job(args, data, config_decode, out_dir)
    started = time.perf_counter()
    interval = 0.0 if decode == "synthetic_no_monitor" else args.monitor_interval_s
    result = train(job, show_progress=False, decode_paths=paths, monitor_interval_s=interval)
    wall_s = time.perf_counter() - started
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)  # GBs for base; not what is measured
    rows = [json.loads(line) for line in open(metrics)]
    row = {"path": decode, "kept": "synthetic" if decode in SYNTHETIC_PATHS else result.decode, "steps": result.steps, "samples_per_s": result.samples_per_s,
           "data_wait_pct": result.data_wait_pct, "loop_s": result.wall_s, "run_s": wall_s,
           **steady(rows, job.train.batch_size, after_step), "probe": result.decode_probe,
           "monitor": result.monitor, **steady_hardware(out_dir / "monitor.jsonl", after_step)}
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


STEADY_HARDWARE = ("main_thread_cpu_pct", "main_thread_wait_pct", "sys_cpu_pct", "gpu0_sm_clock_mhz",
                   "gpu0_power_w")


def steady_hardware(monitor_file: Path, after_step: int) -> dict:
    """Mean of each ``STEADY_HARDWARE`` field over the monitor's samples after the ``step=after_step``
    mark: the hardware behind the steady samples/s, without the compile and warm-up before it.
    ``main_thread_wait_pct`` is the share of time the training thread was ready to run but had no
    core: high there, with the step slower than its synthetic partner's, is a starved loop thread."""
    if not monitor_file.is_file():
        return {}
    rows = [json.loads(line) for line in open(monitor_file)]
    # by time, not by position: the marks may be written after the samples they fall between
    start = next((row["t_s"] for row in rows if row.get("mark") == f"step={after_step}"), None)
    if start is None:
        return {}
    sums, counts = {}, {}
    for row in rows:
        if "mark" in row or row.get("t_s", -1.0) < start:
            continue
        for key in STEADY_HARDWARE:
            if isinstance(row.get(key), (int, float)):
                sums[key] = sums.get(key, 0.0) + row[key]
                counts[key] = counts.get(key, 0) + 1
    return {f"steady_{key}": sums[key] / counts[key] for key in sums}


def ratios(rows: dict) -> dict:
    """auto over the faster fixed path (whole run and steady state), and whether auto kept it."""
    fixed = [rows[p] for p in ("cpu", "gpu") if not rows[p].get("skipped")]
    auto = rows["auto"]
    out = {}
    for key in ("samples_per_s", "steady_samples_per_s"):
        best = max(fixed, key=lambda r: r[key] or 0.0)
        out[f"auto_vs_faster_fixed_{key}"] = auto[key] / best[key] if best[key] and auto[key] else None
    best = max(fixed, key=lambda r: r["steady_samples_per_s"] or 0.0)
    other = [r for r in fixed if r is not best]
    gap = (best["steady_samples_per_s"] / other[0]["steady_samples_per_s"] - 1) if other and other[0][
        "steady_samples_per_s"] else None
    same = rows.get(auto["kept"], {})
    # the same input path run alone: separates the probe's cost and run-to-run drift from the choice
    out["auto_vs_fixed_same_path_steady"] = (auto["steady_samples_per_s"] / same["steady_samples_per_s"]
                                             if same.get("steady_samples_per_s") and auto["steady_samples_per_s"]
                                             else None)
    out["faster_fixed_path"] = best["path"]
    out["fixed_gap_frac"] = gap
    out["auto_kept"] = auto["kept"]
    out["auto_kept_the_faster"] = auto["kept"] == best["path"] or (gap is not None and gap < SAME_FRAC)
    return out


def partner_ratios(rows: dict) -> dict:
    """Each from-files run's steady samples/s over its synthetic partner's (target >= 0.95)."""
    out = {}
    for path, partner in PARTNERS.items():
        files, synthetic = rows.get(path, {}), rows.get(partner, {})
        if files.get("steady_samples_per_s") and synthetic.get("steady_samples_per_s"):
            out[f"{path}_vs_{partner}_steady"] = files["steady_samples_per_s"] / synthetic["steady_samples_per_s"]
    return out


def monitor_overhead(rows: dict) -> dict:
    """The training step's cost of the hardware monitor: steady samples/s with it off over with it
    on (``synthetic_no_monitor`` over ``synthetic``), as a percentage of the step (target < 1%)."""
    on, off = rows.get("synthetic", {}), rows.get("synthetic_no_monitor", {})
    if not (on.get("steady_samples_per_s") and off.get("steady_samples_per_s")):
        return {}
    return {"monitor_overhead_pct": 100 * (off["steady_samples_per_s"] / on["steady_samples_per_s"] - 1),
            "monitor_samples": (on.get("monitor") or {}).get("samples"),
            "monitor_achieved_hz": (on.get("monitor") or {}).get("achieved_hz")}


def print_partners(partners: dict) -> None:
    for key, ratio in partners.items():
        files, partner = key.removesuffix("_steady").split("_vs_")
        print(f"{'from files / synthetic, steady: ' + files:<46} {ratio:.3f}x (of {partner})")


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_rows(rows: dict) -> None:
    print(f"\n{'decode':<11} {'kept':<5} {'steps':>6} {'samples/s':>10} {'wait %':>7} "
          f"{'steady samples/s':>17} {'steady wait %':>14} {'loop thread CPU/queued %':>25} {'SM MHz':>7}")
    for path, r in rows.items():
        if r.get("skipped"):
            print(f"{path:<11} skipped: {r['skipped']}")
            continue
        print(f"{path:<11} {r['kept']:<5} {r['steps']:>6} {fmt(r['samples_per_s'], ',.1f'):>10} "
              f"{fmt(r['data_wait_pct'], '.1f'):>7} {fmt(r['steady_samples_per_s'], ',.1f'):>17} "
              f"{fmt(r['steady_data_wait_pct'], '.1f'):>14} "
              f"{fmt(r.get('steady_main_thread_cpu_pct'), '.0f') + ' / ' + fmt(r.get('steady_main_thread_wait_pct'), '.1f'):>25} "
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


def main(argv=None) -> int:
    args = parse(argv)
    import torch

    from mmscale.train import decode_probe
    from mmscale.train.decode_probe import plan_decode

    if args.probe_steps:
        decode_probe.PROBE_WARMUP_STEPS, decode_probe.PROBE_TIMED_STEPS = map(int, args.probe_steps.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    cuda = args.device != "cpu" and torch.cuda.is_available()
    started = time.perf_counter()
    data = prepare_data(args)
    probe_job = load_job(args, data, "auto", args.out / "auto")
    plan = plan_decode(probe_job.data, torch.device("cuda" if cuda else "cpu"), args.steps,
                       paths=["gpu", "cpu"] if cuda or args.cpu_stand_in else None)
    # every run's steady state starts where auto's probe ends at the latest, so the three compare
    # the same steps
    log_every = probe_job.train.log_every
    after_step = -(-max(plan.probe_steps, log_every) // log_every) * log_every
    print(f"preset {args.preset}, {args.steps} steps per run, batch {probe_job.train.batch_size}, "
          f"workers {probe_job.data.num_workers}, compile {probe_job.train.compile}; auto plan: {plan.paths} "
          f"({plan.probe_steps} probe steps); steady state from step {after_step}")
    rows = {}
    for path in args.paths.split(","):
        print(f"running decode={path} ...", flush=True)
        rows[path] = run_one(args, data, path, cuda, after_step)
    summary = ratios(rows) if set(PATHS) <= set(rows) else {}
    summary["files_vs_synthetic"] = partner_ratios(rows)
    summary.update(monitor_overhead(rows))
    summary.update({"device": torch.cuda.get_device_name() if cuda else "cpu", "preset": args.preset,
                    "steps": args.steps, "steady_from_step": after_step, "overrides": list(args.overrides),
                    "wall_s": time.perf_counter() - started})
    (args.out / "decode_auto.json").write_text(json.dumps({"summary": summary, "runs": rows}, indent=1))
    if summary.get("auto_kept") is not None:
        print_table(rows, summary)
    else:
        print_rows(rows)
    print_partners(summary["files_vs_synthetic"])
    if "monitor_overhead_pct" in summary:
        print(f"{'monitor overhead, steady (on vs off)':<46} {summary['monitor_overhead_pct']:+.2f}% of the step "
              f"({summary['monitor_samples']} samples at {fmt(summary['monitor_achieved_hz'], '.1f')} Hz)")
    print(f"\nwall {summary['wall_s']:.0f} s; JSON: {args.out / 'decode_auto.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
