"""Two torchrun agents on localhost, as two nodes of two processes each (c10d rendezvous, gloo):
the same losses as one process with the same global batch, and one set of results."""

import json
import os
import subprocess
import sys

import pytest

from mmscale.config.load import load_config
from mmscale.train import TrainJob, train
from tests.train.conftest import TINY_OVERRIDES, free_port

# itm_weight=0: ITM's hard negatives are each process's own (ITC's are global), so only ITC compares
OVERRIDES = TINY_OVERRIDES + ["train.steps=3", "train.eval_samples=4", "train.device=cpu", "model.itm_weight=0"]


def logged_losses(out_dir) -> list[float]:
    rows = [json.loads(line) for line in open(out_dir / "metrics.jsonl")]
    return [row["loss/total"] for row in rows if "loss/total" in row]


def launch_node(port: int, out_dir, data) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "mmscale-test",
           "-m", "mmscale.cli", "train", "--preset", "tiny", "--no-progress",
           *OVERRIDES, f"data.path={data}", f"train.out_dir={out_dir}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.whole_machine  # several torchrun agents and their ranks: run after the parallel part, alone
def test_two_nodes_of_two_processes_match_one_process(tiny_dataset, tmp_path):
    nodes_dir, single_dir = tmp_path / "nodes", tmp_path / "single"
    port = free_port()
    agents = [launch_node(port, nodes_dir, tiny_dataset) for _ in range(2)]
    single = train(load_config(TrainJob, preset="tiny", overrides=OVERRIDES + [
        f"data.path={tiny_dataset}", f"train.out_dir={single_dir}"]))  # meanwhile, here
    outputs = [agent.communicate(timeout=240)[0] for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], "\n".join(output[-3000:] for output in outputs)

    result = json.loads((nodes_dir / "result.json").read_text())
    assert result["world_size"] == 4 and result["contrastive_batch"] == 8 == single.contrastive_batch
    assert result["samples"] == single.samples == 24
    # each rank reads every 4th sample of the same order: the global batch of each step is the one
    # process's batch, and ITC over every rank's rows is its loss
    multi, one = logged_losses(nodes_dir), logged_losses(single_dir)
    assert len(multi) == len(one) == 3
    for a, b in zip(multi, one):
        assert abs(a - b) <= 1e-4 * abs(b), (multi, one)
    # global rank 0 alone prints the summary and writes results
    assert sum("trained 3 steps" in output for output in outputs) == 1
    written = {p.name for p in nodes_dir.iterdir()}
    assert written - {"checkpoint"} == {p.name for p in single_dir.iterdir()} - {"checkpoint.pt"}
    assert "checkpoint" in written  # every rank's part of the sharded checkpoint, in the one folder
