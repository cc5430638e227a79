"""What ``mmscale serve`` with no flags runs with: on CUDA the best measured configuration, with
front ends from the cores; on CPU one process without graphs; set fields always win."""

import pytest

from mmscale.serve.config import ServeConfig
from mmscale.serve.defaults import resolve


@pytest.mark.parametrize("cores, frontends", [(16, 8), (64, 8), (8, 4), (3, 1), (1, 1)])
def test_a_cuda_host_resolves_to_the_measured_configuration(cores, frontends):
    cfg = resolve(ServeConfig(), cuda=True, cores=cores)
    assert (cfg.frontends, cfg.cuda_graphs, cfg.max_batch, cfg.max_wait_ms) == (frontends, True, 256, 1.0)


def test_a_cpu_host_resolves_to_one_process_without_graphs():
    cfg = resolve(ServeConfig(), cuda=False, cores=16)
    assert (cfg.frontends, cfg.cuda_graphs, cfg.max_batch, cfg.max_wait_ms) == (1, False, 32, 2.0)


def test_the_device_decides_when_cuda_is_not_given(monkeypatch):
    from mmscale.serve import defaults

    monkeypatch.setattr(defaults, "cuda_available", lambda: True)
    assert resolve(ServeConfig(), cores=16).frontends == 8
    assert resolve(ServeConfig(device="cpu"), cores=16).frontends == 1  # --device cpu on a GPU host
    monkeypatch.setattr(defaults, "cuda_available", lambda: False)
    assert resolve(ServeConfig(), cores=16).cuda_graphs is False


def test_set_fields_win_and_resolving_twice_changes_nothing():
    cfg = resolve(ServeConfig(frontends=2, cuda_graphs=False, max_batch=64), cuda=True, cores=16)
    assert (cfg.frontends, cfg.cuda_graphs, cfg.max_batch, cfg.max_wait_ms) == (2, False, 64, 1.0)
    assert resolve(cfg, cuda=False, cores=2) == cfg


def test_the_naive_peer_stays_one_process_without_graphs():
    cfg = resolve(ServeConfig(server="naive"), cuda=True, cores=16)
    assert (cfg.frontends, cfg.cuda_graphs) == (1, False)
