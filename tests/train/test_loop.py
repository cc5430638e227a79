import json

from mmscale.config.load import load_config
from mmscale.train import TrainJob, train
from tests.train.conftest import TINY_OVERRIDES


def test_train_runs_logs_evaluates_and_checkpoints(tiny_dataset, tmp_path):
    job = load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={tiny_dataset}", f"train.out_dir={tmp_path}", "train.steps=4", "train.grad_accum=2",
    ])
    result = train(job)
    assert result.steps == 4 and result.samples == 32
    assert result.loss is not None and result.loss > 0 and result.flops_per_step > 0
    assert set(result.eval) >= {"i2t_r1", "t2i_r10", "chance_r1"}
    assert result.eval["samples"] == 16
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    steps = [r["step"] for r in rows if "loss/total" in r]
    assert steps == [1, 2, 3, 4]
    assert all(r["throughput/samples_per_s"] > 0 and r["time/compute_ms"] > 0 for r in rows if "loss/total" in r)
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "result.json").is_file()
    json.dumps(result.as_dict())  # flat and serializable


def test_time_limit_stops_early_and_still_evaluates(tiny_dataset, tmp_path):
    job = load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={tiny_dataset}", f"train.out_dir={tmp_path}", "train.steps=500",
        "train.time_limit_s=0.001", "train.log_every=100",
    ])
    result = train(job)
    assert result.steps == 1  # the clock is checked after every step of a single process
    assert result.eval["samples"] == 16
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in rows if "loss/total" in r] == [1]  # the stopping step is logged


def tiny_job(data, out_dir, *extra):
    return load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={data}", f"train.out_dir={out_dir}", *extra])


def test_a_batch_of_only_bad_samples_is_a_counted_step_without_update(tiny_dataset, tmp_path):
    """8 good rows, 8 rows naming missing images, a broken line: unshuffled, step 2 reads only bad ones."""
    good = (tiny_dataset / "train.jsonl").read_text().splitlines()[:8]
    bad = [json.dumps({"image": f"gone/{i}.png", "caption": "a red square"}) for i in range(8)]
    manifest = tiny_dataset / "half_bad.jsonl"
    manifest.write_text("\n".join(good + bad + ["{not json"]) + "\n")
    result = train(tiny_job(manifest, tmp_path, "data.shuffle=false", "train.steps=2"))
    assert result.steps == 2 and result.empty_steps == 1
    assert result.samples == 8  # the samples the model saw, not steps x batch
    assert result.skipped_samples == 8 and result.skipped_manifest_rows == 1
    assert result.skip_reasons == {"missing_file": 8, "malformed_line": 1}
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {"step": 2, "data/empty_batch_skipped_samples": 8} in rows
    assert result.eval["split"] == "train"  # one manifest file: its pairs are training pairs
    import torch

    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert float(saved["optimizer"]["state"][0]["step"]) == 1.0  # AdamW stepped once: step 2 made no update
    assert saved["scheduler"]["last_epoch"] == 2 and saved["step"] == 2  # the schedule follows the step number


def test_resuming_a_finished_run_fails_before_touching_it(tiny_dataset, tmp_path):
    import pytest

    from mmscale.errors import ConfigError

    train(tiny_job(tiny_dataset, tmp_path, "train.steps=2"))
    before = (tmp_path / "result.json").read_text()
    with pytest.raises(ConfigError) as err:
        train(tiny_job(tiny_dataset, tmp_path, "train.steps=2", "train.resume=true"))
    assert err.value.field == "train.steps" and "already at step 2" in str(err.value)
    assert (tmp_path / "result.json").read_text() == before


def test_a_fresh_run_in_a_used_folder_starts_its_metrics_again(tiny_dataset, tmp_path):
    train(tiny_job(tiny_dataset, tmp_path, "train.steps=3"))
    result = train(tiny_job(tiny_dataset, tmp_path, "train.steps=1"))
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in rows if "loss/total" in r] == [1]
    assert result.eval["split"] == "val"


def test_cuda_asked_for_without_a_gpu_names_the_field(tiny_dataset, tmp_path):
    import pytest
    import torch

    from mmscale.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError) as err:
        train(tiny_job(tiny_dataset, tmp_path, "train.device=cuda"))
    assert err.value.field == "train.device"


def test_training_streams_across_epochs_and_evaluation_reads_one(tiny_dataset, tmp_path, monkeypatch):
    from mmscale.train import data as train_data

    built = []  # (split, endless) of every loader the run builds
    real = train_data.build_loader

    def recording(*args, **kw):
        built.append((kw["split"], kw["endless"]))
        return real(*args, **kw)
    monkeypatch.setattr(train_data, "build_loader", recording)
    result = train(load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={tiny_dataset}", f"train.out_dir={tmp_path}", "train.steps=8"]))  # 6 batches an epoch
    assert result.steps == 8 and result.samples == 64  # the stream went on into the second epoch
    assert ("train", True) in built and ("val", False) in built
    assert ("train", False) not in built and ("val", True) not in built


def test_checkpoint_saves_are_timed_apart_from_the_training_windows(tiny_dataset, tmp_path, monkeypatch):
    """A save that takes a second must show in ``checkpoint_s``, not in the windows' step time
    or the steady-state figure (the partner: the same run's whole-wall-clock figure)."""
    import time as clock

    from mmscale.train import loop

    real_save = loop.save_training_state

    def slow_save(*args, **kwargs):
        clock.sleep(1.0)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(loop, "save_training_state", slow_save)
    result = train(tiny_job(tiny_dataset, tmp_path, "train.steps=8", "train.log_every=2",
                            "train.checkpoint_every=2"))
    assert result.checkpoint_s >= 3.0  # saves after steps 2, 4 and 6 (the final one is not periodic)
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    step_ms = [r["time/step_ms"] for r in rows if "loss/total" in r]
    assert len(step_ms) == 4 and max(step_ms) < 500  # a window holding a 1 s save would read >= 500
    assert result.steady_samples_per_s > result.samples_per_s
