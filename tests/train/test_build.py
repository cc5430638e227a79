"""``model_to_device``: the host copy a model leaves behind when it moves off the CPU is handed back."""

import torch
from torch import nn

from mmscale.train import build


def small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2))


def test_moving_off_the_host_releases_the_heap(monkeypatch):
    calls = []
    monkeypatch.setattr(build, "release_host_heap", lambda: calls.append(1))
    model = build.model_to_device(small_model(), torch.device("meta"))  # stands in for cuda
    assert calls == [1]
    assert all(p.device.type == "meta" for p in model.parameters())


def test_a_cpu_model_keeps_the_heap_as_is(monkeypatch):
    calls = []
    monkeypatch.setattr(build, "release_host_heap", lambda: calls.append(1))
    model = build.model_to_device(small_model(), "cpu")
    assert calls == []
    assert all(p.device.type == "cpu" for p in model.parameters())
