"""torchrun --max-restarts 1: a rank killed after the first checkpoint, and the job goes on from it
by itself, with the losses of a run never interrupted."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import psutil

from mmscale.config.load import load_config
from mmscale.train import TrainJob, train
from tests.train.conftest import TINY_OVERRIDES

# itm_weight=0: ITM's negatives are each rank's own, so the uninterrupted partner can be one process
OVERRIDES = TINY_OVERRIDES + ["train.steps=8", "train.checkpoint_every=2", "train.eval_samples=4",
                              "train.device=cpu", "model.itm_weight=0"]


def losses_by_step(out_dir) -> dict[int, float]:
    """The last logged total loss of every step (a restarted attempt logs the steps after its checkpoint again)."""
    rows = [json.loads(line) for line in open(out_dir / "metrics.jsonl")]
    return {row["step"]: row["loss/total"] for row in rows if "loss/total" in row}


@pytest.mark.whole_machine  # a torchrun agent and its ranks: run after the parallel part, alone
def test_a_killed_rank_restarts_from_the_last_checkpoint_with_the_same_losses(tiny_dataset, tmp_path):
    out_dir = tmp_path / "elastic"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--max-restarts", "1", "-m", "mmscale.cli", "train", "--preset", "tiny", "--no-progress",
           *OVERRIDES, f"data.path={tiny_dataset}", f"train.out_dir={out_dir}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    agent = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (out_dir / "checkpoint" / "step-000002").is_dir():
        assert agent.poll() is None and time.monotonic() < deadline, agent.communicate()[0][-3000:]
        time.sleep(0.02)
    workers = [p for p in psutil.Process(agent.pid).children() if "mmscale.cli" in " ".join(p.cmdline())]
    next(p for p in workers if p.environ().get("RANK") == "1").send_signal(signal.SIGKILL)

    single = tmp_path / "single"
    train(load_config(TrainJob, preset="tiny", overrides=OVERRIDES + [
        f"data.path={tiny_dataset}", f"train.out_dir={single}"]))  # meanwhile, here
    output = agent.communicate(timeout=240)[0]
    assert agent.returncode == 0, output[-3000:]

    result = json.loads((out_dir / "result.json").read_text())
    assert result["resumed_from_step"] >= 2 and result["world_size"] == 2  # the restarted attempt's result
    assert "Traceback" not in output.split("resuming from", 1)[-1]  # the restart ran clean (monitor included)
    restarted, uninterrupted = losses_by_step(out_dir), losses_by_step(single)
    assert sorted(restarted) == sorted(uninterrupted) == list(range(1, 9))
    for step, loss in uninterrupted.items():
        assert abs(restarted[step] - loss) <= 1e-4 * abs(loss), (step, restarted, uninterrupted)
