"""``mmscale train``: parse, load the job config, call ``mmscale.train.train``, print the result."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.monitor.brief import monitor_line
from mmscale.strict_json import dumps
from mmscale.train import TrainJob, train

ORDER = 30
TRAIN_PRESETS = ("tiny", "base")

EPILOG = """examples:
  mmscale train --preset tiny data.path=data/synth
  mmscale train --preset tiny data.path=data/synth train.steps=200 --out runs/t1
  mmscale train --preset tiny data.path=data/synth --out runs/t1 --resume
  torchrun --nproc-per-node 8 -m mmscale.cli train --preset base data.path=data/coco train.parallel=fsdp

Overrides are dotted key=value pairs over the preset/file (TOML values: 3, 1e-4, true, "text").
Tables: data.* (where samples are, image size, workers), model.* (encoders, fusion, losses),
train.* (steps, batch_size = global batch per optimizer step, precision, checkpoints).
On CUDA the defaults are the fastest measured setup: bf16 weights with fp32 copies in AdamW,
torch.compile, the whole step as one CUDA graph and the flat update (each `auto`; set one to
false for an A/B). The console names what the run resolved to ("runtime: ...").
`mmscale config --preset tiny train` lists every key with its value and what it does.
Writes config.json, metrics.jsonl, monitor.jsonl (hardware timeline, 5 Hz, a mark per log step),
the trackers' files (train.trackers: tensorboard/ by default, mlflow.db, wandb/), checkpoint.pt
(under torchrun: a sharded checkpoint/ folder) and result.json to the run folder, --out DIR
(the same as train.out_dir=DIR; default runs/train).
Several nodes, Slurm and Kubernetes: docs/multi-node.md."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the image+text model (CPU, 1 GPU, or N GPUs under torchrun)",
        description="Train the image+text model with ITC + ITM losses, logging loss terms, "
                    "samples/s, data-wait vs compute, MFU and memory at every log step.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.steps=100")
    parser.add_argument("--preset", default=None, choices=TRAIN_PRESETS,
                        help="tiny (CPU, minutes) or base (ViT-B/16 + BERT-base, for a GPU)")
    parser.add_argument("--config", default=None, help="TOML file with [data], [model], [train] tables")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run folder for results and checkpoints: sets train.out_dir (default runs/train)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in the run folder "
                        "(train.resume=auto: when there is one)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar: one log line per train.log_every steps (the default without a terminal)")
    parser.set_defaults(run=run)


def run(args) -> int:
    overrides = [*args.overrides, *out_override(args.out, args.overrides)]
    overrides += ["train.resume=true"] if args.resume else []
    job = load_config(TrainJob, preset=args.preset, file=args.config, overrides=overrides)
    _check_data_path(job.data.path)
    result = train(job, show_progress=False if args.no_progress else None)
    if result.world_size > 1 and not _is_rank_zero():
        return 0
    if args.json:
        print(dumps(result.as_dict()))
        return 0
    ev = result.eval
    # rank 0 reports its own device (cuda:0); with several ranks, name the kind only
    device = result.device.split(":")[0] if result.world_size > 1 else result.device
    print(f"trained {result.steps} steps, {result.samples} samples in {result.wall_s:.1f} s "
          f"on {result.world_size} x {device}, {result.precision}")
    if result.steady_samples_per_s is not None:
        print(f"steady state: {result.steady_samples_per_s:,.1f} samples/s"
              + (f", MFU {100 * result.steady_mfu:.1f}%" if result.steady_mfu is not None else "")
              + f" (after {result.startup_s:.1f} s of compile, capture and first steps"
              + (f"; checkpoints took {result.checkpoint_s:.1f} s apart" if result.checkpoint_s else "")
              + f"; {result.samples_per_s:,.1f} samples/s over the whole run)")
    else:
        print(f"{result.samples_per_s:,.1f} samples/s over the whole run (too short for a steady-state figure)")
    if result.resumed_from_step:
        print(f"resumed from step {result.resumed_from_step}")
    if result.loss is not None:
        print(f"final loss {result.loss:.4f} (itc {result.loss_itc:.4f}, itm {result.loss_itm:.4f})")
    if result.skip_reasons:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(result.skip_reasons.items()))
        print(f"skipped {result.skipped_manifest_rows} manifest rows and {result.skipped_samples} samples "
              f"at load ({reasons})" + (f"; {result.empty_steps} steps had no good sample" if result.empty_steps else "")
              + "; `mmscale data check` lists them by file and line")
    if ev:
        where = ("recall@1/5/10 on training pairs (data.path is one file: no val split)"
                 if ev.get("split") == "train" else "val recall@1/5/10")
        print(f"{where}: image->text {ev['i2t_r1']:.3f}/{ev['i2t_r5']:.3f}/{ev['i2t_r10']:.3f}, "
              f"text->image {ev['t2i_r1']:.3f}/{ev['t2i_r5']:.3f}/{ev['t2i_r10']:.3f} "
              f"(chance@1 {ev['chance_r1']:.4f}, {ev['samples']} pairs)")
    if result.decode:
        reason = result.decode_probe.get("reason", "") if result.decode_probe else ""
        if reason == f"decode={result.decode}":  # the path was asked for, not chosen
            reason = ""
        print(f"input path: decode={result.decode}" + (f" ({reason})" if reason else ""))
    if result.monitor:
        print(monitor_line(result.monitor))
    print(f"results in {result.out_dir}")
    return 0


def out_override(out: str | None, overrides: list[str]) -> list[str]:
    """``--out DIR`` as the ``train.out_dir`` override, DIR quoted so that it stays a string."""
    if out is None:
        return []
    if not out.strip():
        raise ConfigError("--out", "is empty")
    if any(o.split("=", 1)[0].strip() == "train.out_dir" for o in overrides):
        raise ConfigError("--out", "and train.out_dir= both name the run folder: pass one of them")
    return [f"train.out_dir={json.dumps(out)}"]  # a JSON string is a TOML basic string


def _check_data_path(path: str) -> None:
    """A missing dataset is the first thing a new user meets: say what data.path is and how to
    make one, before any model is built."""
    if any(ch in path for ch in "*?[{") or Path(path).exists():
        return
    raise ConfigError("data.path", f"{path} does not exist. Point data.path at a dataset (a directory "
                      f"with train.jsonl/val.jsonl, a manifest file, or shards), or make a synthetic one: "
                      f"mmscale data synth --n 5000 --out {path}")


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"
