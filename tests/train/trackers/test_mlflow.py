"""MLflow: a tiny training run logs its scalars per step and its config as params into the run
folder's own store, read back with MLflow's client; MLFLOW_TRACKING_URI sends them elsewhere."""

from __future__ import annotations

import json
import os

import pytest

from mmscale.train import train
from mmscale.train.metrics import MetricsWriter
from tests.train.trackers.test_registry import tiny_job

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "unset by the test")  # restored afterwards
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")


def only_run(client: MlflowClient, experiment: str = "mmscale"):
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def test_a_training_run_is_one_mlflow_run_in_the_run_folder(tiny_dataset, tmp_path):
    out_dir = tmp_path / "tiny-mlflow"
    train(tiny_job(tiny_dataset, out_dir, "train.steps=3", "train.trackers=[mlflow]"))
    client = MlflowClient(f"sqlite:///{out_dir / 'mlflow.db'}")
    run = only_run(client)
    assert run.info.run_name == "tiny-mlflow" and run.info.status == "FINISHED"
    rows = [json.loads(line) for line in open(out_dir / "metrics.jsonl")]
    history = client.get_metric_history(run.info.run_id, "loss/total")
    assert [m.step for m in history] == [r["step"] for r in rows if "loss/total" in r] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx([r["loss/total"] for r in rows if "loss/total" in r])
    assert {"throughput/samples_per_s", "time/data_wait_pct", "eval/i2t_r1", "lr"} <= set(run.data.metrics)
    params = run.data.params
    assert params["train.steps"] == "3" and params["model.embed_dim"] == "32"
    assert params["data.path"] == str(tiny_dataset) and params["train.trackers"] == "['mlflow']"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"  # nothing posted to MLflow's servers


def test_mlflow_tracking_uri_names_the_store_and_experiment_name_the_experiment(tmp_path, monkeypatch):
    server = f"sqlite:///{tmp_path / 'server.db'}"  # a user's store, outside the run folder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "sweep-7")
    writer = MetricsWriter(tmp_path / "run", ["mlflow"], config={"train": {"lr": 0.001}})
    writer.write({"step": 5, "loss/total": 0.75, "decode/path": "cpu"})
    writer.close()
    assert not (tmp_path / "run" / "mlflow.db").exists()
    client = MlflowClient(server)
    run = only_run(client, "sweep-7")
    assert run.data.params == {"train.lr": "0.001"} and run.data.metrics == {"loss/total": 0.75}
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/total")] == [5]
