"""Does the model learn? Train a preset on a synthetic set under a time limit; report the recall curve.

Targets (issue 3): ``tiny`` on 2 CPU cores, a 5k synthetic set: val recall@1 >= 5x chance within 10
minutes (training + evaluation; rendering the data set is a one-time preparation, timed separately).
``base`` on one GPU learns the 100k synthetic set (the curve is the result).

    PYTHONPATH=src python3 benchmarks/learning.py --out runs/learning_cpu
    PYTHONPATH=src python3 benchmarks/learning.py --n 200 --time-limit-s 20 --out runs/learning_smoke  # smoke
    # GPU, base preset, the validate suite's 112k set (100.8k train / 11.2k val), ~7 minutes:
    PYTHONPATH=src python3 benchmarks/learning.py --preset base --data runs/h100/data --time-limit-s 360 \
        --eval-every 250 --workers 12 --budget-s 0 --out runs/learning_base

Writes ``learning.json`` (the curve of eval rows and the verdict) and prints a table last.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", help="model/training preset (tiny: CPU target; base: GPU curve)")
    parser.add_argument("--n", type=int, default=5000, help="synthetic samples (10%% go to val)")
    parser.add_argument("--data", default=None, help="existing data dir (default: OUT/data, rendered if missing)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (CPU runs)")
    parser.add_argument("--time-limit-s", type=float, default=500.0,
                        help="training time; start-up and the final evaluation come on top (budget: 600 s in all)")
    parser.add_argument("--eval-every", type=int, default=200, help="steps between recall evaluations")
    parser.add_argument("--workers", type=int, default=1, help="data loader worker processes")
    parser.add_argument("--target-x-chance", type=float, default=5.0)
    parser.add_argument("--budget-s", type=float, default=600.0,
                        help="training + evaluation must end within this to pass (0 = no time target)")
    parser.add_argument("--out", default="runs/learning_cpu")
    parser.add_argument("overrides", nargs="*", help="extra config overrides (key=value)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    from mmscale.config.load import load_config
    from mmscale.data.synth import synthesize
    from mmscale.train import TrainJob, train

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    data = Path(args.data) if args.data else out / "data"
    synth_s = 0.0
    if not (data / "train.jsonl").is_file():
        started = time.perf_counter()
        synthesize(args.n, data, seed=0, val_frac=0.1, workers=args.threads)
        synth_s = time.perf_counter() - started
    run_dir = out / "run"
    overrides = [f"data.path={data}", f"train.out_dir={run_dir}", f"train.time_limit_s={args.time_limit_s}",
                 f"train.num_threads={args.threads}", f"train.eval_every={args.eval_every}",
                 f"data.num_workers={args.workers}", "train.progress=false", "train.steps=100000",
                 "train.warmup_steps=100", "train.checkpoint_every=0", *args.overrides]
    job = load_config(TrainJob, preset=args.preset, overrides=overrides)
    started = time.perf_counter()
    result = train(job)
    total_s = time.perf_counter() - started
    rows = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    curve = [{"step": r["step"], "i2t_r1": r["eval/i2t_r1"], "t2i_r1": r["eval/t2i_r1"]}
             for r in rows if "eval/i2t_r1" in r]
    ev = result.eval
    r1 = min(ev["i2t_r1"], ev["t2i_r1"])
    in_budget = args.budget_s <= 0 or total_s <= args.budget_s
    report = {
        "preset": args.preset, "device": result.device, "mfu": result.mfu,
        "data": str(data), "n": args.n if synth_s else None,  # n: samples synthesized here, if any
        "threads": args.threads, "synth_s": synth_s, "train_and_eval_s": total_s,
        "steps": result.steps, "samples": result.samples, "samples_per_s": result.samples_per_s,
        "data_wait_pct": result.data_wait_pct, "final_loss": result.loss, "eval": ev, "curve": curve,
        "x_chance_r1": r1 / ev["chance_r1"], "target_x_chance": args.target_x_chance,
        "budget_s": args.budget_s,
        "passed": r1 >= args.target_x_chance * ev["chance_r1"] and in_budget,
    }
    (out / "learning.json").write_text(json.dumps(report, indent=2))
    print_table(report)
    return report


def print_table(report: dict) -> None:
    print(f"{'step':>6} {'i2t R@1':>8} {'t2i R@1':>8}")
    for row in report["curve"]:
        print(f"{row['step']:>6} {row['i2t_r1']:>8.3f} {row['t2i_r1']:>8.3f}")
    ev = report["eval"]
    print(f"final ({ev['samples']} val pairs, chance {ev['chance_r1']:.4f}): i2t R@1/5/10 "
          f"{ev['i2t_r1']:.3f}/{ev['i2t_r5']:.3f}/{ev['i2t_r10']:.3f}, t2i {ev['t2i_r1']:.3f}/"
          f"{ev['t2i_r5']:.3f}/{ev['t2i_r10']:.3f}; min R@1 = {report['x_chance_r1']:.1f}x chance")
    budget = f" in {report['budget_s']:.0f} s" if report["budget_s"] > 0 else ""
    print(f"{report['steps']} steps, {report['samples_per_s']:.1f} samples/s, data wait "
          f"{report['data_wait_pct']:.0f}%, train+eval {report['train_and_eval_s']:.0f} s "
          f"(data rendering {report['synth_s']:.0f} s, not counted) -> "
          f"{'PASS' if report['passed'] else 'FAIL'} (target {report['target_x_chance']:.0f}x chance{budget})")


if __name__ == "__main__":
    main()
