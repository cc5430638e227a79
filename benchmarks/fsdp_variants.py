"""FSDP2 wrap variants against DDP, on the same ranks, in one torchrun launch.

Why: on two GPUs with the ``base`` model in eager bf16, FSDP2 ran at about half of DDP's rate
while the link needed only ~3 ms of a ~180 ms step (``mmscale bench scaling``). This script
times the choices that change what FSDP2 does per step, side by side, with DDP as the peer:

- ``ddp``: DDP, fp32 gradient all-reduce;
- ``fsdp_fp32_gather``: FSDP2 gathering the stored fp32 weights (the earlier default);
- ``fsdp``: FSDP2 gathering bf16 weights (``MixedPrecisionPolicy``, the default under bf16);
- ``fsdp_keep``: ``fsdp`` that keeps gathered weights from forward to backward
  (``train.fsdp_reshard_after_forward=false``: one all-gather fewer per block);
- ``fsdp_foreach``: ``fsdp`` with foreach AdamW instead of the fused kernel;
- ``fsdp_noclip``: ``fsdp`` without gradient-norm clipping (clipping reduces over DTensors);
- ``ddp_2d_mask`` (only when named): ``ddp`` with the text encoder handing BERT the 2D padding
  mask, as it did before: transformers then reads the mask on the host (``mask.all()``), a
  device sync in every forward. Against ``ddp`` it measures what passing the 4D mask saves.
- ``ddp_compiled`` and ``ddp_compiled_one_graph`` (only when named): ``ddp`` under
  ``torch.compile``, first with dynamo splitting the graph at DDP's bucket boundaries (its default,
  ``optimize_ddp``: the all-reduce of a bucket can start inside backward), then as one graph whose
  gradients are all-reduced after backward (``train.compile_ddp_buckets=false``). Compiled DDP
  scaled worse than eager DDP on two GPUs; this pair measures whether the graph split is why.
- ``ddp_compiled_bucket100`` / ``ddp_compiled_bucket400`` (only when named): ``ddp_compiled`` with
  100 or 400 MB gradient buckets instead of 25 (``train.ddp_bucket_mb``): about 4x and 16x fewer
  compiled subgraphs, each with its own host-side runtime cost, and less overlap. The compiled
  rows without a size in their name use 25 MB, torch's default (400 is the default under compile
  since this comparison).
- ``ddp_compiled_bf16_weights`` (only when named): ``ddp_compiled_bucket400`` with a bf16 model and
  fp32 master copies in AdamW (``train.weights=bf16``), its gradients averaged in fp32 by a DDP
  communication hook; ``ddp_compiled_bf16_weights_bf16_reduce``: the same, all-reduced in bf16
  without the hook. On two ranks each sum is one addition of two halved bf16 gradients, rounded
  to bf16 once either way; from three ranks on, bf16 sums round at every hop.

Each row: median step of the slowest rank, samples/s over all ranks, the host time until the step
call returned (``issue_ms``: near the step time = the host sets the pace), peak memory, and the
ratio to ``ddp``.

    PYTHONPATH=src python3 benchmarks/fsdp_variants.py --batch 128 --out runs/fsdp_variants   # 2+ GPUs
    PYTHONPATH=src python3 benchmarks/fsdp_variants.py --smoke --out runs/fsdp_smoke          # CPU, gloo

Run without torchrun: it launches itself on every visible GPU (2 gloo processes with --smoke).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

VARIANTS = {
    "ddp": {"strategy": "ddp"},
    "fsdp_fp32_gather": {"strategy": "fsdp", "gather": "fp32"},
    "fsdp": {"strategy": "fsdp"},
    "fsdp_keep": {"strategy": "fsdp", "keep": True},
    "fsdp_foreach": {"strategy": "fsdp", "foreach": True},
    "fsdp_noclip": {"strategy": "fsdp", "noclip": True},
    "ddp_2d_mask": {"strategy": "ddp", "mask_2d": True},
    "ddp_compiled": {"strategy": "ddp", "compile": True, "bucket_mb": 25},
    "ddp_compiled_one_graph": {"strategy": "ddp", "compile": True, "one_graph": True, "bucket_mb": 25},
    "ddp_compiled_bucket100": {"strategy": "ddp", "compile": True, "bucket_mb": 100},
    "ddp_compiled_bucket400": {"strategy": "ddp", "compile": True, "bucket_mb": 400},
    "ddp_compiled_bf16_weights": {"strategy": "ddp", "compile": True, "bucket_mb": 400, "bf16_weights": True},
    "ddp_compiled_bf16_weights_bf16_reduce": {"strategy": "ddp", "compile": True, "bucket_mb": 400,
                                              "bf16_weights": True, "bf16_reduce": True},
}
ONLY_WHEN_NAMED = {"ddp_2d_mask", "ddp_compiled", "ddp_compiled_one_graph", "ddp_compiled_bucket100",
                   "ddp_compiled_bucket400", "ddp_compiled_bf16_weights", "ddp_compiled_bf16_weights_bf16_reduce"}
DEFAULT_VARIANTS = [name for name in VARIANTS if name not in ONLY_WHEN_NAMED]
SMOKE = ["data.image_size=32", "data.max_text_len=8", "model.image_size=32", "model.image_patch_size=8", "model.image_depth=1",
         "model.text_encoder=bert-tiny", "model.max_text_len=8", "model.hidden_dim=32", "model.num_heads=2",
         "model.embed_dim=16", "train.precision=fp32"]


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="per-rank batch")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--gpus", type=int, default=0, help="ranks (default: every visible GPU)")
    parser.add_argument("--smoke", action="store_true", help="2 gloo CPU processes, tiny model")
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def launch(args, argv) -> int:
    import torch

    ranks = 2 if args.smoke else (args.gpus or torch.cuda.device_count())
    if ranks < 2:
        print("needs 2 or more GPUs (or --smoke for 2 CPU processes)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.smoke:
        env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
           os.path.abspath(__file__), *argv]
    return subprocess.run(cmd, env=env).returncode


def build(name, configs, env, device):
    import torch

    from mmscale.model import MultimodalModel
    from mmscale.train.distributed import wrap_model
    from mmscale.train.master_weights import MasterWeightAdamW
    from mmscale.train.optim import build_optimizer
    from mmscale.train.precision import Precision
    from mmscale.train.step import TrainStep

    spec = VARIANTS[name]
    train = configs.job.train
    weights = "bf16" if spec.get("bf16_weights") else "fp32"
    precision = Precision.resolve(train.precision, device, weights)
    gather = None if spec.get("gather") == "fp32" else precision.sharded_param_dtype
    torch.manual_seed(train.seed)
    model = MultimodalModel(configs.job.model).to(device)
    if weights == "bf16":
        model = model.to(torch.bfloat16)
    model = wrap_model(model, spec["strategy"], env, device,
                       param_dtype=gather, reshard_after_forward=not spec.get("keep"),
                       bucket_cap_mb=spec.get("bucket_mb", train.bucket_cap_mb()),
                       fp32_grad_reduce=not spec.get("bf16_reduce"))

    def adamw(module):
        return build_optimizer(module, train.lr, train.weight_decay, train.beta2,
                               fused=device.type == "cuda" and not spec.get("foreach"))

    optimizer = MasterWeightAdamW(model, adamw) if weights == "bf16" else adamw(model)
    clip = 0.0 if spec.get("noclip") else train.grad_clip
    if spec.get("compile"):
        # optimize_ddp is read when dynamo compiles; TrainStep only ever turns it off, so set both ways
        torch._dynamo.config.optimize_ddp = not spec.get("one_graph")
    return TrainStep(model, optimizer, precision=precision, grad_clip=clip, compile=bool(spec.get("compile")),
                     ddp_graph_split=not spec.get("one_graph"))


def mask_2d():
    """Make the text encoder hand BERT the 2D mask (the earlier behaviour); returns the undo."""
    from mmscale.model import encoders

    ours = encoders.TextEncoder.forward

    def earlier(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    encoders.TextEncoder.forward = earlier
    return lambda: setattr(encoders.TextEncoder, "forward", ours)


def worker(args) -> None:
    import torch
    import torch.distributed as dist

    from mmscale.bench import stats
    from mmscale.bench.scaling import slowest_rank, time_steps
    from mmscale.train.distributed import init_distributed, resolve_device
    from mmscale.train.synthetic import synthetic_batch
    from mmscale.validate import load_configs

    configs = load_configs("tiny" if args.smoke else "gpu", SMOKE if args.smoke else [])
    env = init_distributed("cpu" if args.smoke else "cuda")
    device = resolve_device("cpu" if args.smoke else "cuda", env)
    batch = synthetic_batch(configs.job.model, args.batch, device, seed=env.rank)
    rows = []
    for name in args.variants.split(","):
        step = build(name, configs, env, device)
        restore = mask_2d() if VARIANTS[name].get("mask_2d") else (lambda: None)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        issue: list[float] = []
        times = slowest_rank(time_steps(step, batch, args.steps, args.warmup, device, issue=issue), env.world_size)
        step_ms = stats.median(times)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        rows.append({"variant": name, "ranks": env.world_size, "per_rank_batch": args.batch,
                     "step_ms": step_ms, "samples_per_s": args.batch * env.world_size / step_ms * 1e3,
                     "issue_ms": stats.median(issue), "peak_gib": peak, "step_ms_values": times})
        restore()
        del step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if env.is_main:
        base = next((r for r in rows if r["variant"] == "ddp"), None)
        print(f"{'variant':18s} {'step ms':>8s} {'samples/s':>10s} {'issue ms':>9s} {'peak GiB':>9s} {'vs ddp':>7s}")
        for r in rows:
            r["vs_ddp"] = r["samples_per_s"] / base["samples_per_s"] if base else None
            peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
            ratio = f"{r['vs_ddp']:.2f}x" if r["vs_ddp"] else "-"
            print(f"{r['variant']:18s} {r['step_ms']:8.1f} {r['samples_per_s']:10.0f} {r['issue_ms']:9.1f} "
                  f"{peak:>9s} {ratio:>7s}")
        if args.out:
            from mmscale.bench.environment import fingerprint

            Path(args.out).mkdir(parents=True, exist_ok=True)
            doc = {"rows": rows, "environment": fingerprint(), "argv": sys.argv[1:]}
            (Path(args.out) / "fsdp_variants.json").write_text(json.dumps(doc, indent=1))
    dist.barrier()
    dist.destroy_process_group()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if "WORLD_SIZE" not in os.environ:
        return launch(args, argv)
    worker(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
