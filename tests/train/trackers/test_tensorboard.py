"""TensorBoard: the numeric fields of each row become scalars at the row's step."""

from __future__ import annotations

import pytest

from mmscale.train.metrics import MetricsWriter

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def test_numeric_fields_are_scalars_at_their_step(tmp_path):
    writer = MetricsWriter(tmp_path, ["tensorboard"])
    writer.write({"step": 1, "loss/total": 2.5, "throughput/samples_per_s": 40})
    writer.write({"step": 2, "loss/total": 1.5, "decode/path": "cpu", "decode/reason": None, "flag": True})
    writer.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["loss/total", "throughput/samples_per_s"]
    assert [(e.step, e.value) for e in events.Scalars("loss/total")] == [(1, 2.5), (2, 1.5)]
    assert [(e.step, e.value) for e in events.Scalars("throughput/samples_per_s")] == [(1, 40.0)]
