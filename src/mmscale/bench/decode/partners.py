"""The input path of each ``mmscale bench decode-auto`` run: config settings by name, and the loaders
injected into training for the runs that are not a plain ``data.decode`` (synthetic partners,
per-epoch iteration, the gpu path's code on the CPU)."""

from __future__ import annotations

import dataclasses

import torch

from mmscale.data.loader import build_loader
from mmscale.data.skips import SkipCounter

PATHS = ("cpu", "gpu", "auto")
EXTRA_PATHS = {  # --paths only
    "gpu_bf16": ["data.decode=gpu", "train.weights=bf16"],  # bf16 weights, fp32 copies in AdamW
    "gpu_bf16_step_graph": ["data.decode=gpu", "train.weights=bf16", "train.step_graph=true"],  # + one graph
    "cpu_bf16": ["data.decode=cpu", "train.weights=bf16"],  # the workers decode, bf16 weights
    "cpu_bf16_step_graph": ["data.decode=cpu", "train.weights=bf16", "train.step_graph=true"],  # + one graph
}
# --paths only: the same loop on one device-resident batch, repeated. No input cost, so these are
# the from-files runs' partners: "from files >= 95% of synthetic" compares a gpu* row with the
# synthetic* row of the same settings, in the same process
SYNTHETIC_PATHS = {
    "synthetic": [],
    "synthetic_bf16": ["train.weights=bf16"],
    "synthetic_bf16_step_graph": ["train.weights=bf16", "train.step_graph=true"],
    # the hardware monitor off: its overhead on the training step, against ``synthetic`` (monitor on,
    # the default 0.2 s interval), in the same process
    "synthetic_no_monitor": [],  # run with monitor_interval_s=0
}
CPU_SYNTHETIC_PATHS = ("synthetic", "synthetic_no_monitor")  # need no CUDA (the others are bf16 settings)
# --paths only: a from-files run whose loader is iterated once per epoch (workers idle from each
# epoch's last batch until the next epoch's first is asked for), as training read before it streamed
# across epochs: the endless stream's effect, side by side. Path settings, then the input path built
PER_EPOCH_PATHS = {
    "cpu_bf16_per_epoch": (["train.weights=bf16"], "cpu"),
    "gpu_bf16_per_epoch": (["train.weights=bf16"], "gpu"),
    "cpu_bf16_step_graph_per_epoch": (["train.weights=bf16", "train.step_graph=true"], "cpu"),
    "gpu_bf16_step_graph_per_epoch": (["train.weights=bf16", "train.step_graph=true"], "gpu"),
}
PARTNERS = {"gpu": "synthetic", "cpu": "synthetic", "gpu_bf16": "synthetic_bf16", "cpu_bf16": "synthetic_bf16",
            "gpu_bf16_step_graph": "synthetic_bf16_step_graph", "cpu_bf16_step_graph": "synthetic_bf16_step_graph",
            "cpu_bf16_per_epoch": "synthetic_bf16", "gpu_bf16_per_epoch": "synthetic_bf16",
            "cpu_bf16_step_graph_per_epoch": "synthetic_bf16_step_graph",
            "gpu_bf16_step_graph_per_epoch": "synthetic_bf16_step_graph"}
KNOWN_PATHS = (*PATHS, *EXTRA_PATHS, *SYNTHETIC_PATHS, *PER_EPOCH_PATHS)


def path_settings(decode: str) -> list[str]:
    """The config overrides that define run ``decode``; they go last, over any given for every run."""
    if decode in SYNTHETIC_PATHS:  # one injected loader under auto: exactly that one is built
        return ["data.decode=auto"] + SYNTHETIC_PATHS[decode]
    if decode in PER_EPOCH_PATHS:
        return ["data.decode=auto"] + PER_EPOCH_PATHS[decode][0]
    return EXTRA_PATHS.get(decode, [f"data.decode={decode}"])


def needs_cuda(decode: str) -> bool:
    """Runs of bf16 settings: they only run on CUDA."""
    return (decode in EXTRA_PATHS or decode in PER_EPOCH_PATHS
            or (decode in SYNTHETIC_PATHS and decode not in CPU_SYNTHETIC_PATHS))


def stand_in_paths(decode: str, cuda: bool):
    """Injected loaders for ``--cpu-stand-in`` on a CPU run (None: the configured path as is)."""
    if cuda:
        return None, decode
    paths = {"cpu": build_loader, "gpu": build_loader}
    if decode == "auto":
        return paths, "auto"
    return {decode: paths[decode]}, "auto"  # one injected path: auto builds exactly that one


class RepeatedBatch:
    """A loader's first batch, moved to the device once and yielded forever: the training loop
    with no input cost. Its skips are counted once (the batch is read once)."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device
        self.opened, self.sampler = loader.opened, loader.sampler

    @property
    def index_skips(self):
        return self.loader.index_skips

    def close(self) -> None:
        self.loader.close()

    def __iter__(self):
        first = next(iter(self.loader)).to(self.device)
        yield first
        again = dataclasses.replace(first, skips=SkipCounter())
        while True:
            yield again


def per_epoch_paths(path: str) -> dict:
    """The injected loader of a *_per_epoch run: ``path``'s own loader, iterated once per epoch."""
    def per_epoch(*args, **kwargs):
        return build_loader(*args, **{**kwargs, "decode": path, "endless": False})

    return {path: per_epoch}


def synthetic_paths(cuda: bool) -> dict:
    """The injected loader of a synthetic* run: the cpu path's first batch, repeated on the device."""
    def repeated(cfg, batch_size, tokenizer, device=None, **kwargs):
        loader = build_loader(cfg, batch_size, tokenizer, device=device, **{**kwargs, "decode": "cpu"})
        return RepeatedBatch(loader, torch.device("cuda") if cuda else torch.device("cpu"))

    return {"cpu": repeated}


def injected_paths(decode: str, cuda: bool, cpu_stand_in: bool) -> tuple[dict | None, str]:
    """(the loaders to inject into training, or None; the ``data.decode`` the run is configured with)."""
    if decode in SYNTHETIC_PATHS:
        return synthetic_paths(cuda), decode
    if decode in PER_EPOCH_PATHS:
        return per_epoch_paths(PER_EPOCH_PATHS[decode][1]), decode
    if cuda or not cpu_stand_in:
        return None, decode
    return stand_in_paths(decode, cuda)
