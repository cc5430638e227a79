"""The analyzer's accounting and verdicts on constructed stage timings (pure functions)."""

from __future__ import annotations

import pytest

from mmscale.bench.pipeline.stages import STAGES, StepTiming
from mmscale.bench.pipeline.verdict import account, idle_fraction, interval_union_ms, verdict


def step(step_ms=None, host=None, samples=8, **stage_ms):
    ms = dict.fromkeys(STAGES, 0.0) | stage_ms
    total = sum(ms.values())
    return StepTiming(ms, host or dict(ms), total if step_ms is None else step_ms, samples)


def test_account_averages_and_checks_the_sum():
    steps = [step(data_wait=2, image_fwd=10, backward=20, optimizer=3, step_ms=36),
             step(data_wait=4, image_fwd=12, backward=22, optimizer=3, step_ms=42)]
    acc = account(steps)
    assert acc.stage_ms["data_wait"] == 3 and acc.stage_ms["backward"] == 21
    assert acc.step_ms == 39 and acc.stages_sum_ms == pytest.approx(38)
    assert acc.unattributed_ms == pytest.approx(1) and acc.unattributed_frac == pytest.approx(1 / 39)
    assert acc.shares["backward"] == pytest.approx(21 / 39)
    assert acc.samples_per_s == pytest.approx(16 / 0.078)
    with pytest.raises(ValueError):
        account([])


def test_input_bound():
    acc = account([step(data_wait=30, h2d=2, image_fwd=20, backward=40, optimizer=8)])
    v = verdict(acc, "cuda", gpu_idle_frac=0.35)
    assert v.name == "input-bound"
    assert "32%" in v.evidence[0] and "GPU idle 35%" in v.evidence[1]


def test_compute_bound_on_gpu_when_kernels_queue_ahead():
    device = dict(data_wait=1, h2d=1, image_fwd=30, text_fwd=10, fusion_fwd=5, loss=4, backward=40, optimizer=9)
    host = dict(device, image_fwd=3, text_fwd=2, fusion_fwd=1, loss=1, backward=5, optimizer=1)
    v = verdict(account([step(host=host, **device)]), "cuda", gpu_idle_frac=0.03, compute_idle_frac=0.01)
    assert v.name == "compute-bound"
    assert v.metrics["host_issue_ratio"] == pytest.approx(13 / 98)
    assert "backward" in v.evidence[1]


def test_launch_bound_when_host_issue_matches_device_time():
    device = dict(data_wait=1, image_fwd=10, text_fwd=5, fusion_fwd=2, loss=3, backward=15, optimizer=5)
    v = verdict(account([step(**device)]), "cuda")  # host == device: the GPU trails the launches
    assert v.name == "launch/host-bound" and v.metrics["host_issue_ratio"] == pytest.approx(1.0)


def test_launch_bound_from_profiler_idle_alone():
    device = dict(data_wait=1, image_fwd=10, backward=20, optimizer=5)
    host = dict(device, image_fwd=1, backward=2, optimizer=1)
    acc = account([step(host=host, **device)])
    assert verdict(acc, "cuda", compute_idle_frac=0.5).name == "launch/host-bound"
    assert verdict(acc, "cuda", compute_idle_frac=0.1).name == "compute-bound"


def test_cpu_never_claims_launch_bound():
    v = verdict(account([step(data_wait=1, image_fwd=10, backward=20)]), "cpu")
    assert v.name == "compute-bound" and "needs a GPU" in v.evidence[-1]
    assert v.metrics["host_issue_ratio"] is None


def test_thresholds_are_arguments():
    acc = account([step(data_wait=8, image_fwd=50, backward=42)])
    assert verdict(acc, "cpu").name == "compute-bound"
    assert verdict(acc, "cpu", input_frac=0.05).name == "input-bound"


def test_interval_union_and_idle():
    assert interval_union_ms([(0, 2), (1, 3), (5, 6)]) == 4
    assert interval_union_ms([(0, 10)], window=(2, 4)) == 2
    assert interval_union_ms([]) == 0
    # two 10 ms step windows, kernels busy 6 ms in the first and 2 ms in the second
    assert idle_fraction([(0, 4), (3, 6), (12, 14)], [(0, 10), (10, 20)]) == pytest.approx(0.6)
    with pytest.raises(ValueError):
        idle_fraction([], [(1, 1)])


def test_profiler_idle_overrules_host_issue_ratio():
    """A sync inside the step makes host time track device time while the GPU is busy."""
    device = dict(data_wait=1, image_fwd=10, text_fwd=5, backward=15, optimizer=5)
    v = verdict(account([step(**device)]), "cuda", gpu_idle_frac=0.02, compute_idle_frac=0.0)
    assert v.name == "compute-bound"
    assert any("sync" in line for line in v.evidence)


def test_a_crowded_training_thread_adds_its_evidence_to_any_verdict():
    acc = account([step(data_wait=1, image_fwd=30, backward=40, optimizer=9)])
    crowded = verdict(acc, "cuda", gpu_idle_frac=0.02, compute_idle_frac=0.01, loop_wait_frac=0.25)
    assert crowded.name == "compute-bound" and crowded.metrics["loop_thread_wait_frac"] == 0.25
    assert "waited for a free core 25%" in crowded.evidence[-1]
    calm = verdict(acc, "cuda", gpu_idle_frac=0.02, compute_idle_frac=0.01, loop_wait_frac=0.05)
    assert not any("free core" in line for line in calm.evidence)
    assert not any("free core" in line for line in verdict(acc, "cpu").evidence)  # not sampled: no claim
    assert "free core" in verdict(acc, "cpu", loop_wait_frac=0.05, wait_frac=0.04).evidence[-1]
