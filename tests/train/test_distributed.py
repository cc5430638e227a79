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
