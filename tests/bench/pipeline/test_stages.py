"""Stage timing of a real (tiny) training step on CPU, and the worker-side host stages.

The stages must add up to the wall-clock step within 5% (measured, not assumed), and the worker
stages partition the worker's batch time (one chain of marks, so a busy host cannot open a gap).
"""

from __future__ import annotations

import json
import time

import pytest
import torch

from mmscale.bench.pipeline.run import cycle, run_steps, synthetic_to_device
from mmscale.bench.pipeline.stages import STAGES, StageClock
from mmscale.bench.pipeline.verdict import account
from tests.data.conftest import FakeTokenizer


def tiny_model_cfg():
    from mmscale.model.config import ModelConfig

    return ModelConfig(image_encoder="vit_tiny_patch16_224", image_size=32, image_patch_size=16, image_depth=1,
                       text_encoder="bert-tiny", max_text_len=8, fusion="fused", fusion_layers=1,
                       hidden_dim=32, num_heads=2, embed_dim=16)


def test_stage_clock_marks_tile_the_step():
    clock = StageClock("cpu")
    clock.begin_step("data_wait")
    time.sleep(0.02)
    clock.mark("image_fwd")
    time.sleep(0.01)
    clock.mark("loss")
    clock.mark("image_fwd")  # a stage seen twice in a step adds up
    time.sleep(0.01)
    t = clock.end_step(samples=4)
    assert set(t.stage_ms) == {"data_wait", "image_fwd", "loss"}
    assert t.stage_ms["data_wait"] >= 19 and t.stage_ms["image_fwd"] >= 19
    assert sum(t.stage_ms.values()) == pytest.approx(t.step_ms, rel=0.05)


def test_real_step_stages_sum_to_step_within_5_percent():
    from mmscale.model import MultimodalModel
    from mmscale.train.optim import build_optimizer
    from mmscale.train.step import TrainStep
    from mmscale.train.synthetic import synthetic_batch

    torch.manual_seed(0)
    cfg = tiny_model_cfg()
    model = MultimodalModel(cfg)
    step = TrainStep(model, build_optimizer(model, 1e-3, 0.0), precision="fp32")
    batch = synthetic_batch(cfg, 4)
    result = run_steps(cycle(lambda: [batch]), synthetic_to_device, step, "cpu", steps=3, warmup=1)
    acc = account(result.steps)
    assert abs(acc.unattributed_frac) < 0.05
    for stage in ("image_fwd", "text_fwd", "fusion_fwd", "loss", "backward", "optimizer"):
        assert acc.stage_ms[stage] > 0, stage  # every hook fired
    assert set(acc.stage_ms) == set(STAGES)
    assert result.samples == 12 and result.samples_per_s > 0
    # hooks are removed afterwards: the model runs un-instrumented again
    assert not model.image_encoder._forward_pre_hooks and not model._forward_hooks


def test_worker_stages_partition_the_batch_time(tmp_path):
    """Worker-side stages through a real DataLoader worker process."""
    from PIL import Image

    from mmscale.bench.pipeline.workers import WORKER_STAGES, aggregate_host_stages, build_timed_loader
    from tests.data.raw_batches import ListIndex

    paths = []
    for i in range(12):
        p = tmp_path / f"{i}.jpg"
        Image.new("RGB", (96, 64), (i * 20, 100, 50)).save(p, quality=90)
        paths.append(str(p))
    paths[3] = str(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    paths[7] = str(tmp_path / "bad.jpg")
    index = ListIndex(paths, [f"a photo number {i}" for i in range(12)])

    loader = build_timed_loader(index, FakeTokenizer(), batch_size=4, image_size=32, max_image_pixels=10**6,
                                max_text_len=8, num_workers=1)
    batches = list(loader)
    assert len(batches) == 3 and all(b.worker_id == 0 for b in batches)
    agg = aggregate_host_stages(batches, [{"pin": None, "h2d": 0.1}] * 3)
    assert sum(agg["host_stage_ms"][k] for k in WORKER_STAGES) == pytest.approx(agg["worker_batch_ms"])
    assert all(agg["host_stage_ms"][k] >= 0 for k in WORKER_STAGES)
    assert agg["host_stage_ms"]["decode"] > 0 and agg["host_stage_ms"]["h2d"] == pytest.approx(0.1)
    skipped = sum(b.skips.skipped for b in batches)
    assert skipped == 2 and sum(len(b) for b in batches) == 10
    json.dumps(agg)  # JSON-ready for the results file
