"""Learning A/B of the training defaults: the current defaults against the previous ones, two seeds each.

Runs ``mmscale train`` four times side by side on one data set (speed is not compared here, so
the runs may share the device), then compares each arm's loss curve and final recall@1 with the
spread between the seeds of one arm. Writes ``defaults_ab.json`` and prints the table.

    PYTHONPATH=src python3 benchmarks/defaults_ab.py --data data/synth --steps 1000 --out runs/ab
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# what `mmscale train --preset base` ran before the measured wins became defaults
PREVIOUS = ["train.weights=fp32", "train.step_graph=false", "train.flat_update=false",
            "model.gelu=erf", "model.patch_embed=conv"]
ARMS = {"defaults": [], "previous": PREVIOUS}


def run_arm(name: str, seed: int, args) -> subprocess.Popen:
    out = Path(args.out) / f"{name}_seed{seed}"
    cmd = [sys.executable, "-m", "mmscale.cli", "train", "--preset", args.preset, f"data.path={args.data}",
           f"train.steps={args.steps}", f"train.seed={seed}", f"train.out_dir={out}", "train.log_every=50",
           f"data.num_workers={args.workers}", *args.overrides, *ARMS[name]]
    log = open(Path(args.out) / f"{name}_seed{seed}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))


def curve(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    return {r["step"]: r["loss/total"] for r in rows if "loss/total" in r}


def summarize(out: Path, seeds: list[int]) -> dict:
    """Per arm: the mean loss over the last fifth of the steps and the final recall@1, per seed."""
    arms = {}
    for name in ARMS:
        per_seed = []
        for seed in seeds:
            run_dir = out / f"{name}_seed{seed}"
            losses = curve(run_dir)
            tail = [v for k, v in losses.items() if k > 0.8 * max(losses)]
            result = json.loads((run_dir / "result.json").read_text())
            per_seed.append({"seed": seed, "tail_loss": statistics.fmean(tail), "i2t_r1": result["eval"]["i2t_r1"],
                             "t2i_r1": result["eval"]["t2i_r1"], "curve": losses})
        arms[name] = per_seed
    verdict = {}
    for key in ("tail_loss", "i2t_r1", "t2i_r1"):
        values = {name: [s[key] for s in runs] for name, runs in arms.items()}
        spread = max(max(v) - min(v) for v in values.values())  # seed-to-seed, the larger arm's
        gap = abs(statistics.fmean(values["defaults"]) - statistics.fmean(values["previous"]))
        verdict[key] = {"gap": gap, "seed_spread": spread, "within_spread": gap <= spread}
    return {"arms": arms, "verdict": verdict}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workers", type=int, default=4, help="loader workers per run")
    parser.add_argument("--out", default="runs/defaults_ab")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides for both arms (e.g. data.decode=gpu)")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    procs = [run_arm(name, seed, args) for name in ARMS for seed in seeds]
    codes = [p.wait() for p in procs]
    if any(codes):
        print(f"a run failed (exit codes {codes}); see the logs in {args.out}")
        return 1
    report = summarize(Path(args.out), seeds)
    (Path(args.out) / "defaults_ab.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    for name, runs in report["arms"].items():
        for s in runs:
            print(f"{name:<9} seed {s['seed']}: loss (last fifth) {s['tail_loss']:.4f}, "
                  f"R@1 i2t {s['i2t_r1']:.3f} t2i {s['t2i_r1']:.3f}")
    for key, v in report["verdict"].items():
        print(f"{key}: gap {v['gap']:.4f}, seed spread {v['seed_spread']:.4f} -> "
              f"{'within' if v['within_spread'] else 'OUTSIDE'} the spread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
