"""``mmscale bench ...`` refuses bad flag values up front: exit 2, one line naming the flag and the
value, no traceback, and nothing launched."""

from __future__ import annotations

import pytest

from mmscale.cli import main
from mmscale.errors import ConfigError


def run_cli(argv, capsys) -> tuple[int, str]:
    """(exit code, stderr) of ``mmscale argv``; argparse usage errors exit through SystemExit."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def section_overrides(monkeypatch) -> list[str]:
    """The overrides a bench command hands its validate section (which then does not run)."""
    seen: list[str] = []

    def fake(name, preset, overrides, *rest, **kw):
        seen.extend(overrides)
        return {"status": "ok", "reason": "", "verdicts": [], "rows": []}

    for command in ("batchsweep", "datascale", "scaling"):
        monkeypatch.setattr(f"mmscale.cli.bench.{command}.run_one_section", fake)
    return seen


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if a section would be run (torchrun launched, a sweep started)."""
    def launched(*args, **kwargs):
        raise AssertionError("a benchmark ran despite the bad flag")

    for command in ("batchsweep", "datascale", "scaling"):
        monkeypatch.setattr(f"mmscale.cli.bench.{command}.run_one_section", launched)
    monkeypatch.setattr("mmscale.cli.bench.data.bench_data_loading", launched)
    monkeypatch.setattr("mmscale.cli.bench.data.synthesize", launched)


# -- errors.py: flags are named as flags, config fields exactly as before ------------------------

def test_config_error_names_a_flag_as_a_flag_and_a_field_as_before():
    assert str(ConfigError("--n", "must be >= 1, got 0")) == "argument --n: must be >= 1, got 0"
    assert str(ConfigError("train.batch_size", "must be >= 1")) == "config field 'train.batch_size': must be >= 1"


# -- bench data ----------------------------------------------------------------------------------

def test_data_fewer_images_than_one_batch_names_n_and_batch_size(tmp_path, capsys, nothing_runs):
    code, err = run_cli(["bench", "data", "--data", str(tmp_path), "--n", "16", "--batch-size", "32",
                         "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    line = err.strip()
    assert line.startswith("mmscale: error: argument --n: 16 images") and "--batch-size 32" in line
    assert "(32 images)" in line and "raise --n to 32 or lower --batch-size to 16" in line
    assert "n_images" not in line and "config field" not in line


@pytest.mark.parametrize("flag", ["--n", "--repeats", "--batch-size"])
def test_data_counts_must_be_at_least_one(flag, tmp_path, capsys, nothing_runs):
    code, err = run_cli(["bench", "data", "--data", str(tmp_path), flag, "0", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"argument {flag}: must be >= 1, got 0" in err


# -- bench datascale -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [("abc", "'abc'"), ("100,x", "'x' in '100,x'"), ("0,5", "'0' in '0,5'"),
                                          (",", "','")])
def test_datascale_sizes_must_be_positive_integers(value, shown, capsys, nothing_runs):
    code, err = run_cli(["bench", "datascale", "--sizes", value], capsys)
    assert code == 2
    assert "argument --sizes:" in err and shown in err and "usage:" in err


def test_datascale_sizes_reach_the_config(section_overrides, capsys):
    assert main(["bench", "datascale", "--sizes", " 500, 1000 ", "--epochs", "2"]) == 0
    assert "validate.datascale.sizes=[500,1000]" in section_overrides
    assert "validate.synth_samples=1112" in section_overrides and "validate.datascale.epochs=2" in section_overrides


def test_datascale_epochs_zero_is_refused(capsys, nothing_runs):
    code, err = run_cli(["bench", "datascale", "--epochs", "0"], capsys)
    assert code == 2 and "argument --epochs: must be >= 1, got 0" in err


# -- bench load ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, message", [
    ("--concurrency", "abc", "argument --concurrency: expected comma-separated integers >= 1, got 'abc'"),
    ("--concurrency", "4,0", "argument --concurrency: every value must be >= 1, got '0' in '4,0'"),
    ("--concurrency", "1.5", "argument --concurrency: expected comma-separated integers >= 1, got '1.5'"),
    ("--rates", "fast", "argument --rates: expected comma-separated numbers > 0, got 'fast'"),
    ("--rates", "10,-1", "argument --rates: every value must be > 0, got '-1' in '10,-1'"),
    ("--processes", "0", "argument --processes: must be >= 1, got 0"),
])
def test_load_levels_are_checked_before_a_server_is_spawned(flag, value, message, capsys, monkeypatch):
    def spawned(*args, **kwargs):
        raise AssertionError("a server was spawned despite the bad flag")

    monkeypatch.setattr("mmscale.cli.bench.load.SpawnedServer", spawned)
    code, err = run_cli(["bench", "load", "--spawn", "--preset", "tiny", flag, value], capsys)
    assert code == 2 and message in err


def test_load_levels_parse_and_empty_skips():
    from mmscale.cli.bench import load as bench_load

    assert bench_load.concurrency_levels(" 1, 4 ,16") == [1, 4, 16]
    assert bench_load.rate_levels("") == [] and bench_load.rate_levels("2.5,40") == [2.5, 40.0]
    assert bench_load.parse_levels("1,2") == [1, 2] and bench_load.parse_levels([3]) == [3]


def test_load_without_a_target_names_the_url_flag(capsys):
    code, err = run_cli(["bench", "load"], capsys)
    assert code == 2 and "argument --url: give --url URL" in err and "config field" not in err


# -- bench scaling and batchsweep: unknown names fail before anything is launched -----------------

def test_scaling_unknown_strategy_fails_before_torchrun(capsys, nothing_runs):
    code, err = run_cli(["bench", "scaling", "--preset", "cpu", "--strategies", "nope"], capsys)
    assert code == 2 and "usage:" in err
    assert "argument --strategies: unknown strategy 'nope' (known: ddp, fsdp)" in err


def test_scaling_lists_every_unknown_strategy(capsys, nothing_runs):
    code, err = run_cli(["bench", "scaling", "--strategies", "ddp,nope,DDP"], capsys)
    assert code == 2 and "unknown strategies 'nope', 'DDP' (known: ddp, fsdp)" in err


def test_scaling_known_strategies_reach_the_config(section_overrides, capsys):
    assert main(["bench", "scaling", "--strategies", "fsdp, ddp", "--cpu-smoke"]) == 0
    assert 'validate.scaling.strategies=["fsdp","ddp"]' in section_overrides


def test_batchsweep_unknown_variant_fails_up_front(capsys, nothing_runs):
    code, err = run_cli(["bench", "batchsweep", "--variants", "fp32,nope"], capsys)
    assert code == 2 and "usage:" in err
    assert "argument --variants: unknown variant 'nope' (known: fp32, bf16, bf16+ckpt, fp32+ckpt, fsdp)" in err


@pytest.mark.parametrize("override, field, name", [
    ('validate.scaling.strategies=["ddp","nope"]', "validate.scaling.strategies", "strategy 'nope'"),
    ('validate.batchsweep.variants=["nope"]', "validate.batchsweep.variants", "variant 'nope'"),
])
def test_unknown_names_in_the_config_are_config_errors(override, field, name):
    from mmscale.validate import load_configs

    with pytest.raises(ConfigError) as err:
        load_configs("cpu", [override])
    assert err.value.field == field and f"unknown {name}" in str(err.value) and "known:" in str(err.value)
