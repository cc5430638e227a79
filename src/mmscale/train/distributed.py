"""Process group and wrapping for ``torchrun``: the same command trains on 1 or N devices.

Single process (no ``WORLD_SIZE`` in the environment): nothing is initialized, the model is used
as is. Under torchrun: NCCL on CUDA, gloo on CPU; the model is wrapped in DDP, or sharded with
FSDP2 (``fully_shard`` on each encoder block, then the root).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method
from torch.distributed.rendezvous import rendezvous
from torch.nn.parallel import DistributedDataParallel as DDP

from mmscale.errors import ConfigError


@dataclass
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistEnv:
    """Read torchrun's environment and join the process group when there is more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    env = DistEnv(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world)
    if env.active and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(env.local_rank)
        # torchrun's agent serves one store for every restart of the job and its env:// handler adds no
        # per-attempt prefix: a restarted rank could read the killed attempt's gloo addresses and wait
        # on them for the whole timeout; a prefix per restart keeps each attempt's keys its own
        store, rank, world_size = next(rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(backend, store=dist.PrefixStore(f"mmscale/attempt-{attempt}", store),
                                rank=rank, world_size=world_size)
    return env


def resolve_device(choice: str, env: DistEnv) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", "cuda was asked for, but torch sees no CUDA device here "
                          "(use train.device=cpu or auto)")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", env.local_rank)
    return torch.device("cpu")


def sharded_blocks(model: nn.Module) -> list[nn.Module]:
    """The encoder blocks FSDP2 shards one by one (the rest is sharded with the root)."""
    return list(model.image_encoder.backbone.blocks) + list(model.text_encoder.bert.encoder.layer)


def wrap_model(model: nn.Module, strategy: str, env: DistEnv, device: torch.device,
               param_dtype: torch.dtype | None = None, reshard_after_forward: bool = True,
               bucket_cap_mb: int = 25, fp32_grad_reduce: bool | None = None) -> nn.Module:
    """Return the module to train: the model itself, DDP(model) or the FSDP2-sharded model.

    FSDP2 only: ``param_dtype`` is the dtype blocks compute in once gathered (bf16 under bf16
    autocast: half the all-gather bytes and no per-op weight casts; the sharded master weights,
    gradient reduction and optimizer stay fp32). ``reshard_after_forward=False`` keeps each block's
    gathered weights from forward to backward: one all-gather fewer per block per step, for the
    memory of the gathered weights. DDP only: ``bucket_cap_mb``, the gradient bucket size (each
    bucket is one all-reduce, and under ``torch.compile`` one compiled subgraph); and for a bf16
    model ``fp32_grad_reduce``, averaging its gradients in fp32 (``fp32_all_reduce_hook``);
    None: only where that changes the result (``fp32_reduce_pays``).
    """
    if not env.active or strategy == "none":
        return model
    if strategy == "fsdp":
        policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32 if param_dtype else None)
        for block in sharded_blocks(model):
            fully_shard(block, mp_policy=policy, reshard_after_forward=reshard_after_forward)
        fully_shard(model, mp_policy=policy, reshard_after_forward=reshard_after_forward)
        # evaluation and serving call these instead of forward(): they must gather the root's
        # parameters too
        for method in ("image_embedding", "text_embedding"):
            register_fsdp_forward_method(model, method)
        return model

    device_ids = [device.index] if device.type == "cuda" else None
    # with itm_weight=0 the fusion and ITM head get no gradient; DDP must be told to expect that
    ddp = DDP(model, device_ids=device_ids, find_unused_parameters=model.cfg.itm_weight == 0,
              bucket_cap_mb=bucket_cap_mb)
    if fp32_grad_reduce is None:
        fp32_grad_reduce = fp32_reduce_pays(env.world_size)
    if fp32_grad_reduce and any(p.dtype == torch.bfloat16 for p in model.parameters()):  # train.weights=bf16
        ddp.register_comm_hook(None, fp32_all_reduce_hook)
    return ddp


def fp32_reduce_pays(world_size: int) -> bool:
    """Whether averaging bf16 gradients in fp32 gives other gradients than DDP's bf16 all-reduce.

    On two ranks it does not: DDP halves each bf16 gradient (exact: a power of two) and the sum
    of the two halves is rounded to bf16 once, as the fp32 average is. So the hook is pure cost
    there: on two H200s, compiled ``base``, 0.94x-0.96x the step without it (BENCHMARKS.md).
    From three ranks on, a bf16 ring sum rounds at every addition, and the hook pays for itself.
    """
    return world_size > 2


def fp32_all_reduce_hook(group, bucket):
    """DDP communication hook: average a bf16 gradient bucket in fp32, then store it in bf16.

    Summed in bf16, each rank's gradient is rounded to 8 mantissa bits at every addition;
    Megatron-LM reduces bf16 gradients in fp32 for that reason. The bytes on the link are those
    of fp32 DDP, and the gradients kept are still bf16 (the fp32 copies take them from there).
    """
    buffer = bucket.buffer()
    wide = buffer.to(torch.float32).div_(dist.get_world_size(group))
    future = dist.all_reduce(wide, group=group, async_op=True).get_future()

    def narrow(done):
        buffer.copy_(done.value()[0])
        return buffer

    return future.then(narrow)


def all_reduce_mean(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Mean over ranks. A DTensor (FSDP2's clipped grad norm) is first made a full tensor."""
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    if env.active:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.AVG if dist.get_backend() == "nccl" else dist.ReduceOp.SUM)
        if dist.get_backend() != "nccl":
            value /= env.world_size
    return value


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    if env.active and dist.is_initialized():
        dist.destroy_process_group()
