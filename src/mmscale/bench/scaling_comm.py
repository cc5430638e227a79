"""What a scaling step must move between ranks, and how fast the link moves it.

The exposed-communication figure (a step with and without gradient sync) says how much
communication the overlap failed to hide; these say how much there was to hide. Bytes follow
nccl-tests' "bus bytes" convention, so that bytes / measured bus bandwidth is the time the link
needs for them whatever the collective:

- all-reduce of S bytes: 2 (w-1)/w x S;
- all-gather into, or reduce-scatter of, S bytes in total: (w-1)/w x S.

Per step, DDP all-reduces every gradient (fp32). FSDP2 all-gathers each block's weights in the
gather dtype before forward and, when it reshards after forward, again before backward; the root
(embeddings, heads, fusion) is gathered once; it reduce-scatters every gradient in fp32.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter")


def bus_bytes_per_step(strategy: str, world: int, block_params: int, root_params: int,
                       gather_bytes: int = 4, reshard_after_forward: bool = True,
                       grad_bytes: int = 4) -> dict[str, float]:
    """Bus bytes of each collective in one optimizer step (no gradient accumulation)."""
    if world < 2:
        return {}
    share = (world - 1) / world
    params = block_params + root_params
    if strategy == "ddp":
        return {"all_reduce": 2 * share * grad_bytes * params}
    if strategy == "fsdp":
        gathered = block_params * (2 if reshard_after_forward else 1) + root_params
        return {"all_gather": share * gather_bytes * gathered, "reduce_scatter": share * grad_bytes * params}
    raise ValueError(f"unknown strategy {strategy!r}")


def ms_at_link(bus_bytes: dict[str, float], busbw_gbs: dict[str, float]) -> float | None:
    """Milliseconds the link needs for these bytes at its measured bus bandwidth (None if unmeasured)."""
    total = 0.0
    for name, size in bus_bytes.items():
        rate = busbw_gbs.get(name)
        if not rate:
            return None
        total += size / (rate * 1e9) * 1e3
    return total


def measure_link(device, world: int, mib: int, repeats: int = 5) -> dict[str, float]:
    """Bus bandwidth (GB/s) of each collective on a buffer of ``mib`` MiB per rank, in this group."""
    numel = mib * 2**20 // 4
    numel -= numel % world
    x = torch.ones(numel, device=device)
    gathered = torch.empty(numel * world, device=device)
    scattered = torch.empty(numel // world, device=device)
    calls = {"all_reduce": (lambda: dist.all_reduce(x), 2 * (world - 1) / world * numel * 4),
             "all_gather": (lambda: dist.all_gather_into_tensor(gathered, x), (world - 1) / world * numel * world * 4),
             "reduce_scatter": (lambda: dist.reduce_scatter_tensor(scattered, x), (world - 1) / world * numel * 4)}
    out = {}
    for name, (call, size) in calls.items():
        call()  # warm-up: the first call of each collective sets up its channels
        _sync(device)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(repeats):
            call()
        _sync(device)  # host-device sync: the collectives are queued on the device's stream
        seconds = (time.perf_counter() - t0) / repeats
        out[name] = size / seconds / 1e9
    return out


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
