"""Joules per served request: each load row's windows against the GPU energy in them."""

import types

import pytest

from mmscale.bench.load.runner import LoadConfig, attach_energy, bench_load
from mmscale.monitor import nvml
from tests.monitor.test_nvml_energy import fake_pynvml
from tests.serve.serve_fakes import FakePredictor, live_server


def test_attach_energy_divides_the_windows_energy_by_answered_requests():
    answered = types.SimpleNamespace(ok=50, energy_j_per_request=None)
    failed = types.SimpleNamespace(ok=0, energy_j_per_request=None)
    unknown = types.SimpleNamespace(ok=10, energy_j_per_request=None)
    spans = {id(answered): [(0.0, 1.0), (1.0, 2.0)], id(failed): [(2.0, 3.0)], id(unknown): [(9.0, 10.0)]}
    attach_energy([answered, failed, unknown], spans,
                  lambda start, end: None if start >= 9 else 100.0 * (end - start))
    assert answered.energy_j_per_request == pytest.approx(200.0 / 50)
    assert failed.energy_j_per_request is None  # nothing answered: no per-request figure
    assert unknown.energy_j_per_request is None  # no energy for its window


@pytest.mark.parametrize("gpu", [True, False])
def test_load_rows_carry_energy_only_when_a_gpu_is_measured(monkeypatch, gpu):
    from mmscale.serve.config import ServeConfig

    monkeypatch.setattr(nvml, "_import_pynvml", (lambda: fake_pynvml(gpm=False, watts=300.0)) if gpu else (lambda: None))
    cfg = ServeConfig(device="cpu", max_wait_ms=1)
    with live_server(FakePredictor(), cfg) as (url, _):
        result = bench_load(LoadConfig(url=url, concurrencies=[2], window_s=0.5, max_windows=1,
                                       stable_windows=1, processes=1, warmup_s=0.1, energy_interval_s=0.05,
                                       captions_per_request=1), progress=False)
    (row,) = result.rows
    assert row.ok > 0
    if gpu:
        # 300 W over the time the row measured, however many readings a busy machine allowed
        assert row.energy_j_per_request == pytest.approx(300.0 * row.measured_s / row.ok, rel=0.1)
    else:
        assert row.energy_j_per_request is None
