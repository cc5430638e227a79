"""The load section spawns the server the preset describes and says which one it measured."""

from __future__ import annotations

from types import SimpleNamespace

from mmscale.validate import external as validate_external
from mmscale.validate import Context, load_configs


def run_section(monkeypatch, tmp_path, preset: str, overrides: list[str]) -> tuple[dict, list[str]]:
    """The load section with the spawn and the load generator replaced by recorders."""
    spawned: list[list[str]] = []

    class FakeServer:
        def __init__(self, serve_args, **kwargs):
            spawned.append(list(serve_args))
            self.url = "http://127.0.0.1:1"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    result = SimpleNamespace(rows=[], headline="c=1: 10 req/s", search=None, warnings=[])
    monkeypatch.setattr(validate_external, "SpawnedServer", FakeServer)
    monkeypatch.setattr(validate_external, "bench_load", lambda cfg, server, progress: result)
    ctx = Context(load_configs(preset, overrides), tmp_path, tmp_path, "cpu")
    return validate_external.load_section(ctx, "load"), spawned[0]


def test_serve_args_reach_the_spawned_server_last_and_the_report_names_them(monkeypatch, tmp_path):
    section, args = run_section(monkeypatch, tmp_path, "cpu",
                                ['validate.load.serve_args=["--frontends", "2", "--max-batch", "8"]'])
    assert args[:2] == ["--server", "batched"] and args[-4:] == ["--frontends", "2", "--max-batch", "8"]
    assert section["summary"]["serve_args"] == "--frontends 2 --max-batch 8"
    assert section["verdicts"][0]["text"].startswith("batched server (--frontends 2 --max-batch 8): c=1")


def test_without_serve_args_the_server_runs_its_defaults(monkeypatch, tmp_path):
    section, args = run_section(monkeypatch, tmp_path, "cpu", [])
    assert "--frontends" not in args and section["summary"]["serve_args"] == ""
    assert "default options" in section["verdicts"][0]["text"]


def test_the_gpu_preset_spawns_the_default_server():
    """The server a user gets with no flags is the one validate measures (it resolves for the host)."""
    cfg = load_configs("gpu").validate.load
    assert cfg.serve_args == [] and cfg.server == "batched"


def test_the_data_verdict_and_bench_data_help_read_one_target(monkeypatch, tmp_path, capsys):
    """1.07x the reference loader misses the target that `bench data --help` states."""
    import pytest

    from mmscale.bench.data_loading import DataLoadingRow
    from mmscale.bench.thresholds import DATA_LOADER_SPEEDUP
    from mmscale.cli import main

    (tmp_path / "train.jsonl").write_text("")
    rows = [DataLoadingRow("reference_dataloader", 1, 32, 320, 1.0, 100.0),
            DataLoadingRow("ours_cpu", 1, 32, 320, 1.0, 107.0)]
    monkeypatch.setattr(validate_external, "bench_data_loading", lambda *args, **kwargs: rows)
    configs = load_configs("cpu", [f"data.path={tmp_path}"])
    section = validate_external.data_section(Context(configs, tmp_path, tmp_path, "cpu"), "data")
    first = section["verdicts"][0]
    assert first["level"] == "warn" and f"misses the {DATA_LOADER_SPEEDUP:g}x target" in first["text"]
    with pytest.raises(SystemExit):
        main(["bench", "data", "--help"])
    assert f"(c) >= {DATA_LOADER_SPEEDUP}x (b)" in " ".join(capsys.readouterr().out.split())
