"""Sharded checkpoints: FSDP2 on two gloo processes saves each rank's part; one process resumes
from it and serves it; a crash mid-save leaves the previous step whole."""

import json
import os

import pytest
import torch
import torch.multiprocessing as mp

from mmscale.config.load import load_config
from mmscale.errors import CheckpointError
from mmscale.serve.model_loader import load_model
from mmscale.train import TrainJob, train
from mmscale.train import sharded_checkpoint as sharded
from mmscale.train.build import build_run
from mmscale.train.distributed import DistEnv
from mmscale.train.runtime import resolve_runtime
from mmscale.train.state import find_checkpoint, restore_training_state
from tests.train.conftest import TINY_OVERRIDES, free_port


def job_for(data, out_dir, *extra) -> TrainJob:
    return load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={data}", f"train.out_dir={out_dir}", "train.eval_samples=4", "train.device=cpu", *extra])


def fsdp_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(job_for(data, out, "train.steps=3", "train.parallel=fsdp"))


def test_fsdp_checkpoint_of_two_ranks_resumes_and_serves_in_one_process(tiny_dataset, tmp_path):
    mp.start_processes(fsdp_worker, args=(2, free_port(), str(tiny_dataset), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")  # a fork after autograd ran in this process fails
    step_dir = find_checkpoint(tmp_path)
    assert step_dir == tmp_path / "checkpoint" / "step-000003"
    assert len(list(step_dir.glob("*.distcp"))) == 2  # one part per rank

    job = job_for(tiny_dataset, tmp_path, "train.steps=4")
    run = build_run(job, resolve_runtime(job.train))
    assert restore_training_state(step_dir, job, run.wrapped, run.optimizer, run.scheduler, run.step.scaler) == 3
    saved = sharded.load_weights(tmp_path / "checkpoint")["model"]
    for name, value in run.model.state_dict().items():
        torch.testing.assert_close(value, saved[name], msg=name)
    moments = run.optimizer.state
    assert moments and all(int(state["step"]) == 3 for state in moments.values())
    assert all(state["exp_avg"].abs().sum() > 0 for state in moments.values())
    assert run.scheduler.last_epoch == 3

    served, _ = load_model(str(tmp_path / "checkpoint"))  # the server takes the folder
    for name, value in served.state_dict().items():
        torch.testing.assert_close(value, saved[name], msg=name)

    result = train(job_for(tiny_dataset, tmp_path, "train.steps=4", "train.resume=auto"))
    assert result.resumed_from_step == 3 and result.steps == 1
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in rows if "loss/total" in r] == [1, 2, 3, 4]  # the folder's log goes on
    # one process writes checkpoint.pt, and the folder keeps one checkpoint
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.pt" and not (tmp_path / "checkpoint").exists()


def test_a_crash_mid_save_leaves_the_previous_step_loadable(tmp_path, monkeypatch):
    env = DistEnv()
    arrays = lambda value: {"model": {"w": torch.full((4,), float(value))}}  # noqa: E731
    sharded.save_sharded(tmp_path, 1, arrays(1), {"step": 1}, env)

    def crash(state, checkpoint_id, **kwargs):
        open(os.path.join(checkpoint_id, "__0_0.distcp"), "wb").write(b"half")
        raise OSError("disk full")

    real_save = sharded.dcp.save
    monkeypatch.setattr(sharded.dcp, "save", crash)
    with pytest.raises(OSError):
        sharded.save_sharded(tmp_path, 2, arrays(2), {"step": 2}, env)
    assert sharded.latest_step_dir(tmp_path) == tmp_path / "step-000001"
    template = {"model": {"w": torch.zeros(4)}}
    sharded.load_arrays(sharded.latest_step_dir(tmp_path), template)
    assert template["model"]["w"].tolist() == [1.0] * 4

    monkeypatch.setattr(sharded.dcp, "save", real_save)
    sharded.save_sharded(tmp_path, 2, arrays(2), {"step": 2}, env)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000002"]  # older step and leftover gone
    with pytest.raises(CheckpointError, match="no complete sharded checkpoint"):
        sharded.resolve_step_dir(tmp_path / "elsewhere")


def resume_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    result = train(job_for(data, out, "train.steps=4", "train.parallel=fsdp", "train.resume=auto"))
    assert result.resumed_from_step == 3 and result.world_size == world


@pytest.mark.whole_machine  # four, then two gloo processes: run after the parallel part, alone
def test_a_checkpoint_of_four_ranks_resumes_at_two_and_loads_in_one(tiny_dataset, tmp_path):
    mp.start_processes(fsdp_worker, args=(4, free_port(), str(tiny_dataset), str(tmp_path)), nprocs=4, join=True,
                       start_method="spawn")
    step_dir = find_checkpoint(tmp_path)
    assert len(list(step_dir.glob("*.distcp"))) == 4  # one part per rank
    saved = sharded.load_weights(tmp_path / "checkpoint")["model"]  # the weights whole, in one process

    mp.start_processes(resume_worker, args=(2, free_port(), str(tiny_dataset), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")  # FSDP2 at two ranks from four ranks' shards, one step more
    step_dir = find_checkpoint(tmp_path)
    assert step_dir.name == "step-000004" and len(list(step_dir.glob("*.distcp"))) == 2
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in rows if "loss/total" in r] == [1, 2, 3, 4]

    job = job_for(tiny_dataset, tmp_path, "train.steps=4")
    run = build_run(job, resolve_runtime(job.train))
    assert restore_training_state(step_dir, job, run.wrapped, run.optimizer, run.scheduler, run.step.scaler) == 4
    moved = sum((run.model.state_dict()[name] - value).abs().sum().item() for name, value in saved.items())
    assert moved > 0  # step 4 (at two ranks) changed the weights of step 3 (at four)
