"""decode=auto decision as a pure function, and the probe plan, on constructed inputs."""

import pytest
import torch

from mmscale.config.load import load_config
from mmscale.data.config import DataConfig
from mmscale.errors import ConfigError
from mmscale.train.decode_probe import PathProbe, StepClock, choose_decode, plan_decode


def probe(path, step_ms, wait_ms=None, error=""):
    return PathProbe(path, list(step_ms), list(wait_ms or [0.0] * len(step_ms)), error)


def test_clear_winner_is_kept_either_way():
    gpu_wins = choose_decode([probe("gpu", [80, 81, 79, 80]), probe("cpu", [100, 101, 99, 100])])
    assert gpu_wins.path == "gpu" and gpu_wins.reason.startswith("faster")
    assert gpu_wins.step_ms == {"gpu": 80.0, "cpu": 100.0}
    cpu_wins = choose_decode([probe("gpu", [120, 121, 119, 120]), probe("cpu", [100, 101, 99, 100])])
    assert cpu_wins.path == "cpu" and cpu_wins.reason.startswith("faster")


def test_order_of_probes_does_not_change_the_choice():
    a = [probe("gpu", [80, 82, 78]), probe("cpu", [100, 99, 101])]
    assert choose_decode(a).path == choose_decode(a[::-1]).path == "gpu"


def test_gap_under_the_margin_is_a_tie_and_prefers_cpu():
    # gpu 1% faster, no spread: under the 2% margin
    choice = choose_decode([probe("gpu", [99.0] * 5), probe("cpu", [100.0] * 5)])
    assert choice.path == "cpu" and choice.reason.startswith("tie within noise")
    # the same 1% counts once the margin is set below it
    assert choose_decode([probe("gpu", [99.0] * 5), probe("cpu", [100.0] * 5)], min_margin_frac=0.005).path == "gpu"


def test_gap_within_the_spread_is_a_tie_but_not_with_tight_samples():
    noisy_cpu = [100, 140, 60, 120, 80]  # mean 100
    noisy_gpu = [90, 130, 50, 110, 70]  # mean 90: 10% faster, but the spread is +-40 ms
    assert choose_decode([probe("gpu", noisy_gpu), probe("cpu", noisy_cpu)]).path == "cpu"
    tight_cpu = [99, 101, 100, 100, 100]
    tight_gpu = [89, 91, 90, 90, 90]
    choice = choose_decode([probe("gpu", tight_gpu), probe("cpu", tight_cpu)])
    assert choice.path == "gpu" and "noise" in choice.reason
    # one stalled step raises gpu's mean but not its spread: still a clear winner
    stalled_gpu = [60, 61, 59, 60, 160]  # mean 80
    assert choose_decode([probe("gpu", stalled_gpu), probe("cpu", tight_cpu)]).path == "gpu"


def test_a_failing_path_is_never_chosen():
    choice = choose_decode([probe("gpu", [], error="RuntimeError: nvjpeg"), probe("cpu", [100, 100])])
    assert choice.path == "cpu" and "gpu failed (RuntimeError: nvjpeg)" in choice.reason
    assert choice.step_ms["gpu"] is None and choice.errors == {"gpu": "RuntimeError: nvjpeg"}
    # a path with timings but an error (failed mid-window) is not trusted either
    choice = choose_decode([probe("gpu", [50, 50]), probe("cpu", [10, 10], error="OSError: disk")])
    assert choice.path == "gpu" and "cpu failed" in choice.reason
    with pytest.raises(ValueError, match="no input path was measured"):
        choose_decode([probe("gpu", [], error="x"), probe("cpu", [], error="y")])


def test_data_wait_share_and_flat_row():
    choice = choose_decode([probe("gpu", [100, 100], [30, 10]), probe("cpu", [50, 50], [1, 1])])
    assert choice.path == "cpu"
    assert choice.data_wait_pct == {"gpu": pytest.approx(20.0), "cpu": pytest.approx(2.0)}
    row = choice.as_row()
    assert row["decode/path"] == "cpu" and row["decode/gpu_step_ms"] == 100.0
    assert row["decode/cpu_data_wait_pct"] == pytest.approx(2.0)


def test_step_clock_on_cpu_measures_host_intervals():
    clock = StepClock(torch.device("cpu"))
    for _ in range(3):
        clock.mark()
    gaps = clock.intervals_ms()
    assert len(gaps) == 2 and all(g >= 0 for g in gaps) and clock.marks == []


def data_cfg(tmp_path, **kw):
    (tmp_path / "train.jsonl").write_text("")
    return DataConfig(path=str(tmp_path), decode="auto", **kw)


def test_plan_without_cuda_is_cpu_with_no_probe(tmp_path):
    plan = plan_decode(data_cfg(tmp_path), torch.device("cpu"), steps_left=1000)
    assert plan.paths == ["cpu"] and not plan.probes and "not CUDA" in plan.reason
    fixed = plan_decode(DataConfig(path=str(tmp_path), decode="cpu"), torch.device("cpu"), 1000)
    assert fixed.paths == ["cpu"] and fixed.reason == "decode=cpu"


def test_plan_with_paths_probes_preferred_last_and_sizes_warmup(tmp_path, monkeypatch):
    from mmscale.train import decode_probe

    monkeypatch.setattr(decode_probe, "PROBE_TIMED_STEPS", 5)
    sized = data_cfg(tmp_path, num_workers=6, prefetch_factor=3)
    plan = plan_decode(sized, torch.device("cpu"), 1000, paths=["cpu", "gpu"])
    assert plan.paths == ["gpu", "cpu"] and plan.timed_steps == 5
    assert plan.warmup_steps == 6 + 2 and plan.max_warmup_steps == 8 + 6 * 3
    assert plan.max_timed_steps == 5 + 6 * 3
    assert plan.probe_steps == 2 * (26 + 23 + 1)  # the longest the probe can take
    short = plan_decode(sized, torch.device("cpu"), 100, paths=["cpu", "gpu"])
    assert short.paths == ["cpu"] and "too few" in short.reason
    monkeypatch.setattr(decode_probe, "PROBE_TIMED_STEPS", None)  # default: two rounds of worker batches, >= 16
    assert plan_decode(data_cfg(tmp_path, num_workers=16), torch.device("cpu"), 10**6,
                       paths=["gpu", "cpu"]).timed_steps == 32
    assert plan_decode(data_cfg(tmp_path, num_workers=2), torch.device("cpu"), 10**6,
                       paths=["gpu", "cpu"]).timed_steps == 16


def test_plan_for_shards_is_cpu(tmp_path):
    (tmp_path / "train-000000.tar").write_bytes(b"")
    plan = plan_decode(DataConfig(path=str(tmp_path), decode="auto"), torch.device("cpu"), 1000,
                       paths=["gpu", "cpu"])
    assert plan.paths == ["cpu"] and "WebDataset" in plan.reason


@pytest.mark.parametrize("override, field", [("data.decode=fast", "data.decode"),
                                             ("data.prefetch_factor=0", "data.prefetch_factor")])
def test_decode_fields_are_validated(override, field):
    with pytest.raises(ConfigError, match=field):
        load_config(DataConfig, preset="tiny", overrides=[override], section="data")


def test_pipeline_analyzer_reports_what_auto_would_keep():
    from mmscale.bench.pipeline.run import RunResult
    from mmscale.bench.pipeline.stages import StepTiming
    from mmscale.bench.pipeline.variants import decode_auto_row

    def run(step_ms, wait_ms):
        steps = [StepTiming({"data_wait": wait_ms}, {}, step_ms, 8) for _ in range(4)]
        return RunResult(steps, 4 * step_ms / 1e3, 32)

    row = decode_auto_row(run(100.0, 1.0), run(120.0, 15.0), "")
    assert row.variant == "decode_auto" and row.samples_per_s is None
    assert row.extra["choice"] == "cpu" and row.extra["same_as"] == "dataloader_cpu_decode"
    assert row.extra["step_ms"] == {"gpu": 120.0, "cpu": 100.0}
    assert decode_auto_row(run(100.0, 30.0), run(80.0, 1.0), "").extra["choice"] == "gpu"
    no_gpu = decode_auto_row(run(100.0, 1.0), None, "no CUDA")
    assert no_gpu.extra["choice"] == "cpu" and "no CUDA" in no_gpu.extra["reason"]
