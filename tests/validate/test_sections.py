"""The datascale section keeps a compiled job's compile out of its time fit."""

from __future__ import annotations

from mmscale.bench import datascale as ds
from mmscale.validate import Context, load_configs
from mmscale.validate import sections


def fake_runner(compiles: bool, calls: list[int]):
    """One second of compile on the first call, then 1 ms per sample (what a compiled job pays)."""
    def run(n_samples: int, epochs: int) -> ds.RunMeasure:
        first = not calls
        calls.append(n_samples)
        wall = n_samples / 1000 + (1.0 if first else 0.0)
        return ds.RunMeasure(steps=n_samples // 16, samples_seen=n_samples, train_wall_s=wall,
                             startup_s=1.0 if first else 0.01)
    run.compiles = compiles
    return run


def run_section(monkeypatch, tmp_path, compiles: bool) -> tuple[dict, list[int]]:
    calls: list[int] = []
    monkeypatch.setattr(sections, "training_runner", lambda job, device, progress: fake_runner(compiles, calls))
    monkeypatch.setattr(sections, "dataset_size", lambda job: None)
    configs = load_configs("cpu", ["validate.datascale.sizes=[1000,2000,4000]", "train.batch_size=16"])
    return sections.run_datascale_section(Context(configs, tmp_path, tmp_path, "cpu")), calls


def test_a_compiled_job_warms_up_before_the_fitted_sizes(monkeypatch, tmp_path):
    section, calls = run_section(monkeypatch, tmp_path, compiles=True)
    assert calls == [ds.WARMUP_STEPS * 16, 1000, 2000, 4000]
    assert [r["n_samples"] for r in section["rows"]] == [1000, 2000, 4000]
    assert section["summary"]["warmup_startup_s"] == 1.0
    assert abs(section["summary"]["seconds_per_1k_samples"] - 1.0) < 1e-6  # the compile second is not in it
    assert any("compile and graph capture: 1 s" in v["text"] for v in section["verdicts"])


def test_an_eager_job_runs_the_sizes_alone(monkeypatch, tmp_path):
    section, calls = run_section(monkeypatch, tmp_path, compiles=False)
    assert calls == [1000, 2000, 4000] and "warmup_startup_s" not in section["summary"]
