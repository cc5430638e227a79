"""Two processes on gloo (CPU) run the real training loop: DDP, and FSDP2 sharding."""

import json
import os

import pytest
import torch
import torch.multiprocessing as mp

from mmscale.config.load import load_config
from mmscale.train import TrainJob, train
from mmscale.train.sharded_checkpoint import load_weights
from tests.train.conftest import TINY_OVERRIDES, free_port, join_gloo


RUNS = {"ddp": ["train.parallel=ddp"], "fsdp": ["train.parallel=fsdp"],
        "ddp_bf16": ["train.parallel=ddp", "train.weights=bf16", "train.precision=bf16"]}


def worker(rank: int, world: int, ports: list[int], runs: list[tuple[str, list[str]]]) -> None:
    """The real training loop, once per run, in one launch (a launch costs two processes' imports);
    each run joins its own process group on its own port."""
    torch.set_num_threads(1)
    for port, (out, overrides) in zip(ports, runs):
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        result = train(load_config(TrainJob, preset="tiny", overrides=overrides))
        with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
            json.dump(result.as_dict(), handle)


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory) -> dict:
    """The out_dir of each run of ``RUNS``, trained by two gloo processes."""
    outs = {name: tmp_path_factory.mktemp(name) for name in RUNS}
    runs = [(str(outs[name]), TINY_OVERRIDES + [f"data.path={tiny_dataset}", f"train.out_dir={outs[name]}",
                                                "train.steps=3", "train.checkpoint_every=2", "train.eval_samples=4",
                                                "train.device=cpu", *extra])
            for name, extra in RUNS.items()]
    mp.start_processes(worker, args=(2, [free_port() for _ in runs], runs), nprocs=2, join=True,
                       start_method="spawn")  # a fork after autograd ran in this process fails
    return outs


@pytest.mark.parametrize("name", sorted(RUNS))
def test_two_processes_on_gloo_train_a_few_steps(name, trained):
    out = trained[name]
    results = [json.load(open(out / f"rank{r}.json")) for r in range(2)]
    assert all(r["world_size"] == 2 and r["steps"] == 3 and r["samples"] == 24 for r in results)
    # losses are all-reduced at each log step, so both ranks report the same value
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["step"] for r in rows if "loss/total" in r] == [1, 2, 3]
    # each rank wrote its part of a sharded checkpoint; one process joins them into the full model
    assert not (out / "checkpoint.pt").exists()
    assert {p.name for p in (out / "checkpoint" / "step-000003").glob("*.distcp")} == {"__0_0.distcp",
                                                                                     "__1_0.distcp"}
    state = load_weights(out / "checkpoint")
    assert state["step"] == 3
    assert state["model"]["itm_head.weight"].shape == (2, 64)
    assert state["model"]["itm_head.weight"].dtype == torch.float32  # bf16 weights store their fp32 copies


def tiny_multimodal():
    from mmscale.model import MultimodalModel
    from mmscale.model.config import ModelConfig

    cfg = ModelConfig(image_encoder="vit_tiny_patch16_224", image_size=32, image_patch_size=8, image_depth=1,
                      text_encoder="bert-tiny", max_text_len=8, hidden_dim=32, num_heads=2, embed_dim=16)
    return MultimodalModel(cfg), cfg


def gather_dtypes(model, cfg, rank: int) -> dict:
    """One bf16 step of an FSDP2-wrapped tiny model: the dtype its blocks computed with, and the
    dtypes its parameters and gradients are stored in."""
    from mmscale.train.synthetic import synthetic_batch

    seen = []
    block = model.image_encoder.backbone.blocks[0]
    block.register_forward_pre_hook(lambda module, args: seen.append(str(module.attn.qkv.weight.dtype)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(*synthetic_batch(cfg, 4, "cpu", seed=rank))["loss"]
    loss.backward()
    stored = {str(p.dtype) for p in model.parameters()} | {str(p.grad.dtype) for p in model.parameters()
                                                            if p.grad is not None}
    return {"gathered": seen, "stored": sorted(stored)}


def two_rank_wrap_worker(rank: int, world: int, port: int, out: str) -> None:
    """The product's wrapper on two gloo ranks, checked four ways in one launch (a launch costs two
    processes' imports): FSDP2 with and without a bf16 compute dtype, the DDP bucket size, and a
    bf16 model's averaged gradient with how often the fp32 hook ran."""
    from mmscale.train import distributed

    env = join_gloo(rank, world, port)
    record = {}
    for name, param_dtype in (("bf16", torch.bfloat16), ("none", None)):
        model, cfg = tiny_multimodal()
        model = distributed.wrap_model(model, "fsdp", env, torch.device("cpu"), param_dtype=param_dtype)
        record[f"fsdp_{name}"] = gather_dtypes(model, cfg, rank)
    ddp = distributed.wrap_model(tiny_multimodal()[0], "ddp", env, torch.device("cpu"), bucket_cap_mb=100)
    record["bucket_bytes_cap"] = ddp.bucket_bytes_cap

    calls = []
    hook = distributed.fp32_all_reduce_hook
    distributed.fp32_all_reduce_hook = lambda group, bucket: calls.append(1) or hook(group, bucket)
    layer = torch.nn.Linear(1, 1, bias=False).to(torch.bfloat16)
    layer.cfg = ModelConfigStub()
    model = distributed.wrap_model(layer, "ddp", env, torch.device("cpu"))
    x = torch.tensor([[1.0 if rank == 0 else 1.0 + 2.0**-7]], dtype=torch.bfloat16)
    model(x).sum().backward()
    record["bf16_mean"] = {"grad": layer.weight.grad.item(), "hook_calls": len(calls)}
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump(record, handle)
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def two_rank_wrap(tmp_path_factory):
    """Each rank's record from one launch of ``two_rank_wrap_worker``."""
    out = tmp_path_factory.mktemp("wrap")
    mp.start_processes(two_rank_wrap_worker, args=(2, free_port(), str(out)), nprocs=2, join=True,
                       start_method="spawn")  # a fork after autograd ran in this process fails
    return [json.load(open(out / f"rank{rank}.json")) for rank in range(2)]


@pytest.mark.parametrize("param_dtype, gathered", [("bf16", "torch.bfloat16"), ("none", "torch.float32")])
def test_fsdp_gathers_blocks_in_the_compute_dtype_and_keeps_fp32_masters(param_dtype, gathered, two_rank_wrap):
    for record in two_rank_wrap:
        assert record[f"fsdp_{param_dtype}"]["gathered"] == [gathered]
        assert record[f"fsdp_{param_dtype}"]["stored"] == ["torch.float32"]  # sharded weights and their gradients


def test_ddp_takes_the_configured_bucket_size(two_rank_wrap):
    assert [record["bucket_bytes_cap"] for record in two_rank_wrap] == [100 * 2**20] * 2


def test_ddp_bucket_size_follows_the_mode():
    from mmscale.train.config import TrainConfig
    from mmscale.train.runtime import resolve_runtime

    assert resolve_runtime(TrainConfig(device="cpu", compile=False)).ddp_bucket_mb == 25  # torch's default
    assert resolve_runtime(TrainConfig(device="cpu", compile=True)).ddp_bucket_mb == 400  # fewer compiled subgraphs


def bf16_reduce_worker(rank: int, world: int, port: int, out: str) -> None:
    """A bf16 model under the product's DDP wrapper; record the averaged gradient."""
    from mmscale.train.distributed import wrap_model

    env = join_gloo(rank, world, port)
    layer = torch.nn.Linear(1, 1, bias=False).to(torch.bfloat16)
    layer.cfg = ModelConfigStub()
    model = wrap_model(layer, "ddp", env, torch.device("cpu"))
    x = torch.tensor([[3.0 if rank == 2 else 1.0]], dtype=torch.bfloat16)
    model(x).sum().backward()  # this rank's gradient of the weight is x
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump({"grad": layer.weight.grad.item(), "dtype": str(layer.weight.grad.dtype)}, handle)
    torch.distributed.destroy_process_group()


class ModelConfigStub:
    itm_weight = 1.0  # what wrap_model reads of a MultimodalModel's config


def test_ddp_averages_bf16_gradients_through_the_hook(tmp_path):
    """Gradients 1, 1, 3 on three ranks. The hook averages in fp32: 5/3 is 1.6640625 in bf16.
    Without it DDP divides each bf16 gradient by 3 first (1/3 -> 0.333984375) and sums those:
    1.671875. (The dtype on the link is checked below.)"""
    mp.start_processes(bf16_reduce_worker, args=(3, free_port(), str(tmp_path)), nprocs=3, join=True,
                       start_method="spawn")  # a fork after autograd ran in this process fails
    for rank in range(3):
        result = json.load(open(tmp_path / f"rank{rank}.json"))
        assert result["dtype"] == "torch.bfloat16"
        assert result["grad"] == 1.6640625


def test_two_ranks_average_bf16_gradients_exactly_without_the_hook():
    """Why two ranks skip the hook: halving is exact in bf16 and the sum of two halves is rounded
    once, so DDP's bf16 mean equals the fp32 mean rounded to bf16, value for value."""
    from mmscale.train.distributed import fp32_reduce_pays

    gen = torch.Generator().manual_seed(0)
    a = (torch.randn(100_000, generator=gen) * 10.0 ** torch.randint(-6, 6, (100_000,), generator=gen)).bfloat16()
    b = (torch.randn(100_000, generator=gen) * 10.0 ** torch.randint(-6, 6, (100_000,), generator=gen)).bfloat16()
    fp32_mean = ((a.float() + b.float()) / 2).bfloat16()
    ddp_bf16_mean = a / 2 + b / 2  # DDP's default hook: divide by the world size, then sum
    assert torch.equal(fp32_mean, ddp_bf16_mean)
    c = torch.full_like(a, 3.0)
    three_fp32 = ((a.float() + b.float() + c.float()) / 3).bfloat16()
    three_bf16 = a / 3 + b / 3 + c / 3
    assert not torch.equal(three_fp32, three_bf16)  # three ranks round differently: the hook pays
    assert [fp32_reduce_pays(n) for n in (2, 3, 8)] == [False, True, True]


def test_two_ranks_leave_bf16_gradients_to_ddp_and_get_the_same_mean(two_rank_wrap):
    """Gradients 1 and 1 + 2^-7: the mean 1 + 2^-8 rounds to 1.0 in bf16 (ties to even) with or
    without the hook; on two ranks the hook does not run."""
    for record in two_rank_wrap:
        assert record["bf16_mean"] == {"grad": torch.tensor(1.0 + 2.0**-8).bfloat16().item(), "hook_calls": 0}


def test_the_hook_sends_fp32_and_stores_the_mean_in_bf16(monkeypatch):
    from mmscale.train import distributed

    sent = []

    def all_reduce(tensor, group=None, async_op=False):  # three ranks holding the same bucket
        sent.append(tensor.dtype)
        future = torch.futures.Future()
        future.set_result([tensor * 3])
        return type("Work", (), {"get_future": lambda self: future})()

    monkeypatch.setattr(distributed.dist, "all_reduce", all_reduce)
    monkeypatch.setattr(distributed.dist, "get_world_size", lambda group=None: 3)
    grads = torch.tensor([1.0, 2.0**-8, 3.0], dtype=torch.bfloat16)
    bucket = type("Bucket", (), {"buffer": lambda self: grads})()
    out = distributed.fp32_all_reduce_hook(None, bucket).wait()
    assert sent == [torch.float32]
    assert out is grads and out.dtype == torch.bfloat16
    assert out.tolist() == [1.0, 2.0**-8, 3.0]  # the mean of three equal buckets
