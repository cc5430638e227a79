"""Two processes on gloo (CPU) run the real training loop: DDP, and FSDP2 sharding."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mmscale.config.load import load_config
from mmscale.train import TrainJob, train
from tests.train.conftest import TINY_OVERRIDES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker(rank: int, world: int, port: int, overrides: list[str], out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    result = train(load_config(TrainJob, preset="tiny", overrides=overrides))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump(result.as_dict(), handle)


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_on_gloo_train_a_few_steps(parallel, tiny_dataset, tmp_path):
    overrides = TINY_OVERRIDES + [f"data.path={tiny_dataset}", f"train.out_dir={tmp_path}", "train.steps=3",
                                  f"train.parallel={parallel}", "train.checkpoint_every=2",
                                  "train.eval_samples=4", "train.device=cpu"]
    # fork: the workers inherit the imported libraries instead of importing them again (seconds each)
    mp.start_processes(worker, args=(2, free_port(), overrides, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    results = [json.load(open(tmp_path / f"rank{r}.json")) for r in range(2)]
    assert all(r["world_size"] == 2 and r["steps"] == 3 and r["samples"] == 24 for r in results)
    # losses are all-reduced at each log step, so both ranks report the same value
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in rows if "loss/total" in r] == [1, 2, 3]
    # the checkpoint holds the full (unsharded) model: a single process can load it
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    assert state["model"]["itm_head.weight"].shape == (2, 64)


def join_gloo(rank: int, world: int, port: int):
    """This worker's part of a CPU process group; returns the product's DistEnv for it."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from mmscale.train.distributed import init_distributed

    return init_distributed("cpu")


def tiny_multimodal():
    from mmscale.model import MultimodalModel
    from mmscale.model.config import ModelConfig

    cfg = ModelConfig(image_encoder="vit_tiny_patch16_224", image_size=32, image_patch_size=8, image_depth=1,
                      text_encoder="bert-tiny", max_text_len=8, hidden_dim=32, num_heads=2, embed_dim=16)
    return MultimodalModel(cfg), cfg


def gather_dtype_worker(rank: int, world: int, port: int, param_dtype, out: str) -> None:
    """Wrap a tiny model with FSDP2, run one bf16 step, record what dtype the blocks computed with."""
    from mmscale.train.distributed import wrap_model
    from mmscale.train.synthetic import synthetic_batch

    env = join_gloo(rank, world, port)
    model, cfg = tiny_multimodal()
    model = wrap_model(model, "fsdp", env, torch.device("cpu"), param_dtype=param_dtype)
    seen = []
    block = model.image_encoder.backbone.blocks[0]
    block.register_forward_pre_hook(lambda module, args: seen.append(str(module.attn.qkv.weight.dtype)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(*synthetic_batch(cfg, 4, "cpu", seed=rank))["loss"]
    loss.backward()
    stored = {str(p.dtype) for p in model.parameters()} | {str(p.grad.dtype) for p in model.parameters()
                                                            if p.grad is not None}
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump({"gathered": seen, "stored": sorted(stored)}, handle)
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("param_dtype, gathered", [(torch.bfloat16, "torch.bfloat16"), (None, "torch.float32")])
def test_fsdp_gathers_blocks_in_the_compute_dtype_and_keeps_fp32_masters(param_dtype, gathered, tmp_path):
    mp.start_processes(gather_dtype_worker, args=(2, free_port(), param_dtype, str(tmp_path)), nprocs=2,
                       join=True, start_method="fork")
    for rank in range(2):
        result = json.load(open(tmp_path / f"rank{rank}.json"))
        assert result["gathered"] == [gathered]
        assert result["stored"] == ["torch.float32"]  # sharded weights and their gradients


def ddp_bucket_worker(rank: int, world: int, port: int, bucket_mb: int, out: str) -> None:
    """Wrap a tiny model with DDP through the product's wrapper; record the bucket size DDP holds."""
    from mmscale.train.distributed import wrap_model

    env = join_gloo(rank, world, port)
    model = wrap_model(tiny_multimodal()[0], "ddp", env, torch.device("cpu"), bucket_cap_mb=bucket_mb)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump({"bucket_bytes_cap": model.bucket_bytes_cap}, handle)
    torch.distributed.destroy_process_group()


def test_ddp_takes_the_configured_bucket_size(tmp_path):
    from mmscale.errors import ConfigError
    from mmscale.train.config import TrainConfig

    mp.start_processes(ddp_bucket_worker, args=(2, free_port(), 100, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    for rank in range(2):
        assert json.load(open(tmp_path / f"rank{rank}.json"))["bucket_bytes_cap"] == 100 * 2**20
    with pytest.raises(ConfigError, match="train.ddp_bucket_mb"):
        TrainConfig(ddp_bucket_mb=0).validate()


def test_ddp_bucket_size_defaults_to_the_mode_and_an_explicit_size_wins():
    from mmscale.train.config import TrainConfig

    assert TrainConfig(compile=False).bucket_cap_mb() == 25  # torch's default
    assert TrainConfig(compile=True).bucket_cap_mb() == 400  # fewer compiled subgraphs (BENCHMARKS.md)
    assert TrainConfig(compile=True, ddp_bucket_mb=100).bucket_cap_mb() == 100
    TrainConfig(ddp_bucket_mb=None).validate()
