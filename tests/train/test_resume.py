"""kill -9 in the middle of a run, then --resume: the following steps match an uninterrupted run."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from mmscale.config.load import load_config
from mmscale.errors import CheckpointError
from mmscale.train import TrainJob, train
from mmscale.train.checkpoint import load_checkpoint, save_checkpoint
from tests.train.conftest import TINY_OVERRIDES

STEPS = 18


def run_job(data, out_dir, *extra) -> None:
    torch.set_num_threads(1)
    overrides = TINY_OVERRIDES + [f"data.path={data}", f"train.out_dir={out_dir}", f"train.steps={STEPS}",
                                  "train.checkpoint_every=3", "train.eval_samples=2", *extra]
    train(load_config(TrainJob, preset="tiny", overrides=overrides))


def losses_by_step(path: Path) -> dict[int, float]:
    """The last logged total loss of every step (a resumed run re-logs the steps after its checkpoint)."""
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "loss/total" in row:
            out[row["step"]] = row["loss/total"]
    return out


def logged_steps(path: Path) -> int:
    if not path.is_file():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return max((r["step"] for r in rows if "loss/total" in r), default=0)


def test_kill_9_then_resume_gives_the_same_losses(tiny_dataset, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    run_job(tiny_dataset, full)  # uninterrupted

    # A fresh interpreter, which dies from SIGKILL like any process: no handler runs, nothing is
    # flushed or cleaned up. Not a forked child: once this process has run torch.compile and then
    # a backward (earlier tests in the same worker), autograd refuses to run in a fork of it.
    proc = multiprocessing.get_context("spawn").Process(target=run_job, args=(tiny_dataset, killed))
    proc.start()
    deadline = time.time() + 120
    while logged_steps(killed / "metrics.jsonl") < 4 and proc.is_alive() and time.time() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    reached = logged_steps(killed / "metrics.jsonl")
    assert 4 <= reached < STEPS, f"the kill landed at step {reached}, outside the run"
    resumed_from = int(torch.load(killed / "checkpoint.pt", weights_only=True)["step"])
    assert 3 <= resumed_from <= reached

    run_job(tiny_dataset, killed, "train.resume=true")
    want, got = losses_by_step(full / "metrics.jsonl"), losses_by_step(killed / "metrics.jsonl")
    after = list(range(resumed_from + 1, STEPS + 1))
    assert len(after) >= 5
    for step in after:
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), f"step {step}"


def test_truncated_checkpoint_is_a_clear_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", {"step": 3, "model": {"w": torch.randn(256, 256)}})
    assert load_checkpoint(path)["step"] == 3
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "truncated or corrupt" in str(err.value) and str(path) in str(err.value)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
