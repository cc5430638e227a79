"""W&B: a tiny training run with no API key is an offline run under the run folder, holding the
config and every step's scalars (read back from the run's transaction log)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from mmscale.train import train
from tests.train.trackers.test_registry import tiny_job

pytest.importorskip("wandb")
from wandb.proto import wandb_internal_pb2  # noqa: E402

BLOCK_BYTES = 32 * 1024  # the LevelDB log format: 32 KiB blocks of chunks, each with a 7-byte header
FULL, LAST = 1, 4


def read_records(path: Path) -> list:
    """The protobuf records of an offline run's ``run-ID.wandb``: a 7-byte W&B header, then a
    LevelDB log whose chunks (crc32 u32, length u16, type u8, data) join into records."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if BLOCK_BYTES - pos % BLOCK_BYTES < 7:  # a block's tail too short for a header is padding
            pos += BLOCK_BYTES - pos % BLOCK_BYTES
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.fixture(autouse=True)
def _offline_and_contained(monkeypatch, tmp_path):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name))


def test_a_training_run_is_one_offline_wandb_run_in_the_run_folder(tiny_dataset, tmp_path):
    out_dir = tmp_path / "tiny-wandb"
    train(tiny_job(tiny_dataset, out_dir, "train.steps=3", "train.trackers=[wandb]"))
    (log_file,) = (out_dir / "wandb").glob("offline-run-*/run-*.wandb")
    records = read_records(log_file)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.project == "mmscale" and run.display_name == "tiny-wandb"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["train"]["steps"] == 3 and config["model"]["embed_dim"] == 32
    # a key with a slash ("loss/total") is stored as its parts, in nested_key
    history = [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    logged = [h for h in history if "loss/total" in h]
    rows = [r for r in map(json.loads, open(out_dir / "metrics.jsonl")) if "loss/total" in r]
    assert [h["_step"] for h in logged] == [r["step"] for r in rows] == [1, 2, 3]
    assert [h["loss/total"] for h in logged] == pytest.approx([r["loss/total"] for r in rows])
    assert {"throughput/samples_per_s", "eval/i2t_r1", "lr"} <= {key for h in history for key in h}
