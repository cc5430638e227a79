"""MLflow: one MLflow run per training run, named after ``out_dir``, in experiment ``mmscale``.

The store is the run folder's own SQLite file, ``out_dir/mlflow.db`` (``mlflow ui
--backend-store-uri sqlite:///DIR/mlflow.db`` shows it), unless MLFLOW_TRACKING_URI names the
user's server. Not ``out_dir/mlruns``: MLflow's file store is in maintenance mode, and MLflow 3.17
refuses it unless MLFLOW_ALLOW_FILE_STORE is set, pointing to SQLite instead. Params are the job config, flattened
(``train.lr``); metrics are logged per log step with ``step=``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

EXPERIMENT = "mmscale"
PARAMS_PER_BATCH = 100  # MLflow's limit of params in one log_batch call


class MlflowTracker:
    def __init__(self, out_dir: Path, config: dict):
        # MLflow's usage telemetry posts to MLflow's servers: off unless the user turns it on, as
        # nothing in a run contacts a server unasked (MLflow reads it at each event: in time here)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        out_dir = out_dir.resolve()
        server = os.environ.get("MLFLOW_TRACKING_URI")
        self.client = MlflowClient(server or f"sqlite:///{out_dir / 'mlflow.db'}")
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:  # the run folder's artifacts stay in it; a server keeps its own
            artifacts = None if server else (out_dir / "mlartifacts").as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        self.run_id = self.client.create_run(experiment_id, run_name=out_dir.name).info.run_id
        params = [Param(key, str(value)) for key, value in flat_config(config).items()]
        for start in range(0, len(params), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[start:start + PARAMS_PER_BATCH])

    def log(self, scalars: dict[str, float], step: int) -> None:
        now_ms = int(time.time() * 1000)
        metrics = [Metric(key, value, now_ms, step) for key, value in scalars.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FINISHED))


def flat_config(config: dict, prefix: str = "") -> dict:
    """``{"train": {"lr": 1e-4}}`` -> ``{"train.lr": 1e-4}``: MLflow params are one level."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
