"""Global contrastive negatives: two gloo processes compute the loss and gradients of one process
holding the whole batch."""

import os

import pytest
import torch
import torch.multiprocessing as mp

from mmscale.model import MultimodalModel
from mmscale.model.config import ModelConfig
from mmscale.train.build import build_run
from mmscale.train.config import TrainConfig, TrainJob
from mmscale.train.contrastive import GatherContrastRows, contrastive_batch
from mmscale.train.distributed import DistEnv, all_reduce_mean
from mmscale.train.runtime import resolve_runtime
from mmscale.train.synthetic import synthetic_batch
from tests.train.conftest import free_port, join_gloo

BATCH = 8
PARALLEL = ("ddp", "fsdp")


def contrast_job(parallel: str) -> TrainJob:
    # itm_weight=0: ITM's hard negatives are each process's own by design, so only ITC is compared
    model = ModelConfig(image_encoder="vit_tiny_patch16_224", image_size=32, image_patch_size=8, image_depth=1,
                        text_encoder="bert-tiny", max_text_len=8, hidden_dim=32, num_heads=2, embed_dim=16,
                        itm_weight=0.0)
    return TrainJob(model=model, train=TrainConfig(device="cpu", batch_size=BATCH, parallel=parallel, compile=False))


def full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def contrast_worker(rank: int, world: int, port: int, out: str) -> None:
    """Both wrappers in one launch (a launch costs two processes' imports): each one's loss and
    gradients on this rank's half of the batch, then the row gather of a short batch."""
    env = join_gloo(rank, world, port)
    record = {}
    for parallel in PARALLEL:
        job = contrast_job(parallel)
        run = build_run(job, resolve_runtime(job.train, env), schedule=False)
        pixels, ids, mask = (t.chunk(world)[rank] for t in synthetic_batch(job.model, BATCH, seed=1))
        loss = run.wrapped(pixels, ids, mask)["loss"]
        loss.backward()
        grads = {name: full(p.grad) for name, p in run.model.named_parameters() if p.grad is not None}
        record[parallel] = {"loss": all_reduce_mean(loss.detach(), env), "grads": grads}

    # a batch shortened by bad samples: rank 1 passes 2 rows of the 3 each rank may pass
    gather = GatherContrastRows(3, env)
    own = torch.full((3 - rank, 2), float(rank + 1), requires_grad=True)
    rows = gather(own, -own)
    (rows.image * torch.arange(1.0, 7.0)[:, None]).sum().backward()  # rank r weighs row i by i + 1 on each rank
    record.update(valid=rows.valid, first=rows.first, image=rows.image.detach(), text=rows.text.detach(),
                  own_grad=own.grad)
    torch.save(record, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Each rank's record from one launch of ``contrast_worker``."""
    out = tmp_path_factory.mktemp("contrast")
    mp.start_processes(contrast_worker, args=(2, free_port(), str(out)), nprocs=2, join=True,
                       start_method="spawn")  # a fork after autograd ran in this process fails
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def whole_batch_reference(job: TrainJob):
    torch.manual_seed(job.train.seed)  # as build_run seeds
    model = MultimodalModel(job.model)
    loss = model(*synthetic_batch(job.model, BATCH, seed=1))["loss"]
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("parallel", PARALLEL)
def test_two_processes_match_one_process_with_the_whole_batch(parallel, ranks):
    loss, grads = whole_batch_reference(contrast_job(parallel))
    for rank in ranks:
        result = rank[parallel]
        torch.testing.assert_close(result["loss"], loss, rtol=1e-5, atol=1e-6)
        assert set(result["grads"]) == set(grads)
        for name, grad in grads.items():
            torch.testing.assert_close(result["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_short_batch_is_padded_and_its_gradients_return_to_their_owner(ranks):
    """The short batch is padded to 3 rows; padding is no negative."""
    expected_valid = torch.tensor([True] * 5 + [False])
    for rank, result in enumerate(ranks):
        assert result["first"] == 3 * rank
        assert torch.equal(result["valid"], expected_valid)
        assert torch.equal(result["image"][:, 0], torch.tensor([1.0, 1, 1, 2, 2, 0]))
        assert torch.equal(result["text"], -result["image"])
    # each rank's row i (i = 0..5 globally) got weight i + 1 from both ranks' losses
    assert torch.equal(ranks[0]["own_grad"][:, 0], torch.tensor([2.0, 4, 6]))
    assert torch.equal(ranks[1]["own_grad"][:, 0], torch.tensor([8.0, 10]))


def test_contrastive_batch_is_every_process_micro_batch():
    assert contrastive_batch(16, DistEnv(rank=0, local_rank=0, world_size=8)) == 128
    assert contrastive_batch(16, DistEnv()) == 16
