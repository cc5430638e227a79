import json

import pytest

from mmscale.cli import main
from mmscale.cli.train import out_override
from mmscale.config.load import list_presets, load_config
from mmscale.errors import ConfigError
from mmscale.train import TrainJob
from tests.train.conftest import TINY_OVERRIDES, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("cli_data"), n_train=16, n_val=8)


def test_train_cli_smoke_json(dataset, tmp_path, capsys):
    code = main(["train", "--preset", "tiny", "--json", "--no-progress", *TINY_OVERRIDES,
                 f"data.path={dataset}", f"train.out_dir={tmp_path}", "train.steps=2"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["steps"] == 2 and result["samples"] == 16 and result["eval"]["samples"] == 8
    assert json.loads((tmp_path / "config.json").read_text())["model"]["fusion"] == "fused"


def test_train_cli_human_output(dataset, tmp_path, capsys):
    code = main(["train", "--preset", "tiny", "--no-progress", *TINY_OVERRIDES,
                 f"data.path={dataset}", "--out", str(tmp_path), "train.steps=1"])
    out = capsys.readouterr().out
    assert code == 0 and "trained 1 steps" in out and "val recall@1/5/10" in out
    assert "hardware: " in out and "host CPU" in out and str(tmp_path / "monitor.jsonl") in out


@pytest.mark.parametrize(
    "override,field",
    [
        ("train.no_such_key=1", "train.no_such_key"),
        ("train.batch_size=big", "train.batch_size"),
        ("model.hidden_dim=102", "model.hidden_dim"),
        ("model.fusion=fast", "model.fusion"),
        ("train.grad_accum=3", "train.batch_size"),
        ("model.image_size=48", "model.image_size"),
        ("train.compile_mode=fastest", "train.compile_mode"),
        ("train.compile_mode=reduce-overhead", "train.compile_mode"),  # tiny does not compile
    ],
)
def test_config_errors_name_the_field_and_exit_2(override, field, capsys):
    code = main(["train", "--preset", "tiny", override])
    err = capsys.readouterr().err
    assert code == 2 and f"'{field}'" in err and "Traceback" not in err


def test_out_is_the_run_folder_and_sets_train_out_dir(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "sets train.out_dir" in " ".join(capsys.readouterr().out.split())
    for folder in ("runs/t1", "1e3", "true", 'a "quoted" dir'):  # stays a string, whatever it looks like
        job = load_config(TrainJob, preset="tiny", overrides=out_override(folder, []))
        assert job.train.out_dir == folder
    assert main(["train", "--preset", "tiny", "--out", "runs/a", "train.out_dir=runs/b"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "train.out_dir" in err and "Traceback" not in err


def test_missing_checkpoint_on_resume_is_one_line(dataset, tmp_path, capsys):
    code = main(["train", "--preset", "tiny", "--resume", "--no-progress", *TINY_OVERRIDES,
                 f"data.path={dataset}", f"train.out_dir={tmp_path / 'empty'}"])
    err = capsys.readouterr().err
    assert code == 2 and "checkpoint" in err and "not found" in err


def test_batch_smaller_than_the_processes_names_the_field():
    job = load_config(TrainJob, preset="tiny", overrides=["train.batch_size=4"])
    with pytest.raises(ConfigError) as err:
        job.check_world(8)
    assert err.value.field == "train.batch_size"


@pytest.mark.parametrize("preset", ["tiny", "base"])
def test_shipped_presets_load(preset):
    assert preset in list_presets()
    job = load_config(TrainJob, preset=preset)
    assert job.model.image_size == job.data.image_size


def test_a_missing_dataset_says_how_to_make_one(tmp_path, capsys):
    code = main(["train", "--preset", "tiny", f"data.path={tmp_path / 'nothing'}"])
    err = capsys.readouterr().err
    assert code == 2 and "'data.path'" in err and "mmscale data synth" in err and "Traceback" not in err
