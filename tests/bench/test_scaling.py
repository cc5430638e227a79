"""Scaling: efficiency on constructed rows, and a real 1- and 2-process gloo smoke run on CPU."""

from __future__ import annotations

import pytest

from mmscale.bench import scaling


def srow(strategy, world, regime, sps):
    return scaling.ScalingRow(strategy=strategy, world_size=world, regime=regime, per_rank_batch=8,
                              global_batch=8 * world, step_ms=1.0, samples_per_s=sps,
                              per_rank_samples_per_s=sps / world, step_ms_values=[1.0], nosync_step_ms=None,
                              comm_share=None, peak_mem_gib=None)


def test_efficiency_is_against_one_rank_of_the_same_strategy_and_regime():
    rows = [srow("ddp", 1, "weak", 100), srow("ddp", 2, "weak", 180), srow("ddp", 4, "weak", 320),
            srow("ddp", 1, "strong", 120), srow("ddp", 4, "strong", 240), srow("fsdp", 2, "weak", 150)]
    summary = scaling.analyze(rows)
    assert rows[1].efficiency == pytest.approx(0.9)
    assert rows[2].efficiency == pytest.approx(0.8)
    assert rows[4].efficiency == pytest.approx(0.5)
    assert rows[5].efficiency is None  # no single-rank fsdp row to compare with
    assert summary == {"ddp_weak_efficiency_x2": pytest.approx(0.9), "ddp_weak_efficiency_x4": pytest.approx(0.8),
                       "ddp_strong_efficiency_x4": pytest.approx(0.5)}


@pytest.mark.slow
def test_cpu_smoke_runs_torchrun_with_two_gloo_ranks(tmp_path):
    """The real launch path: torchrun, gloo process group, DDP, no-sync timing, gathered rows.
    (World size 1 is the same code without the group; skipped here to keep the suite fast.)"""
    from mmscale.model.config import ModelConfig
    from mmscale.train.config import TrainConfig

    model_cfg = ModelConfig(image_encoder="vit_tiny_patch16_224", image_size=32, image_patch_size=8, image_depth=1,
                            text_encoder="bert-tiny", max_text_len=8, hidden_dim=32, num_heads=2, embed_dim=16)
    rows, errors = scaling.run_scaling(model_cfg, TrainConfig(precision="fp32"), [2], ["ddp"], per_rank_batch=4,
                                       steps=2, warmup=1, device="cpu", work_dir=tmp_path, strong_global_batch=6)
    assert errors == []
    assert {(r.world_size, r.regime) for r in rows} == {(2, "weak"), (2, "strong")}
    two = [r for r in rows if r.world_size == 2]
    assert all(r.samples_per_s > 0 and r.per_rank_samples_per_s == pytest.approx(r.samples_per_s / 2) for r in two)
    assert all(r.comm_share is not None and 0 <= r.comm_share < 1 for r in two)
    assert all(len(r.step_ms_values) == 2 and r.peak_mem_gib > 0 for r in rows)
    # the link was measured in the same group and the step's bytes were timed against it
    assert all(set(r.link_busbw_gbs) == {"all_reduce", "all_gather", "reduce_scatter"} for r in two)
    assert all(v > 0 for r in two for v in r.link_busbw_gbs.values())
    assert all(r.comm_bus_gb > 0 and r.comm_ms_at_link > 0 for r in two)
    assert all(0 < r.issue_ms <= r.step_ms for r in two)
    strong_two = next(r for r in two if r.regime == "strong")
    assert strong_two.global_batch == 6 and strong_two.per_rank_batch == 3  # the global batch asked for
    # ITC contrasts every rank's rows: the weak regime's 4 per rank gather to 8, the strong one's to 6
    assert {r.regime: r.contrastive_batch for r in two} == {"weak": 8, "strong": 6}
    assert (tmp_path / "log-ddp-2.txt").is_file()  # the launch's console is kept for reading later


def test_a_failed_launch_is_recorded_not_raised(tmp_path, monkeypatch):
    from mmscale.model.config import ModelConfig
    from mmscale.train.config import TrainConfig

    def launch(world_size, strategy, *args, **kwargs):
        if world_size == 2:
            raise RuntimeError("torchrun ddp x2 exited 1: NCCL error")
        return [srow(strategy, world_size, "weak", 100).as_dict()], []

    monkeypatch.setattr(scaling, "launch", launch)
    rows, errors = scaling.run_scaling(ModelConfig(), TrainConfig(), [1, 2], ["ddp"], 2, 1, 0, "cpu", tmp_path)
    assert [r.world_size for r in rows] == [1] and rows[0].efficiency == 1.0
    assert errors == [{"strategy": "ddp", "world_size": 2, "error": "torchrun ddp x2 exited 1: NCCL error"}]


def test_the_verdict_names_the_link_time_and_a_host_bound_step():
    from mmscale.validate.sections import scaling_verdict

    row = srow("fsdp", 2, "weak", 180)
    row.step_ms, row.efficiency, row.comm_share = 140.0, 0.68, 0.15
    row.comm_bus_gb, row.comm_ms_at_link, row.issue_ms = 0.79, 3.1, 131.0
    text = scaling_verdict(row)
    assert "efficiency 0.68" in text and "exposed communication 15%" in text
    assert "3.1 ms for its 0.79 GB" in text and "host-bound" in text
    row.issue_ms = 60.0  # the host returned well before the device finished: not host-bound
    assert "host-bound" not in scaling_verdict(row)


def test_the_step_time_chart_shows_multi_rank_rows_against_their_link_time():
    from mmscale.report.plots import render_png
    from mmscale.validate.charts import scaling_charts

    one, two = srow("fsdp", 1, "weak", 100), srow("fsdp", 2, "weak", 120)
    one.efficiency, two.efficiency = 1.0, 0.6
    two.step_ms, two.comm_share, two.issue_ms, two.comm_ms_at_link = 180.0, 0.2, 175.0, 3.1
    charts = {c["id"]: c for c in scaling_charts([one.as_dict(), two.as_dict()])}
    assert set(charts) == {"scaling-efficiency", "scaling-step-time"}
    bars = {s["label"]: s for s in charts["scaling-step-time"]["series"]}
    assert bars["step"]["x"] == ["fsdp weak x2"] and bars["step"]["y"] == [180.0]
    assert bars["exposed communication"]["y"] == [pytest.approx(36.0)]
    assert bars["link time for the step's bytes"]["y"] == [3.1]
    assert render_png(charts["scaling-step-time"]).startswith(b"\x89PNG")
    # rows measured before link times existed: no breakdown chart rather than an empty one
    assert [c["id"] for c in scaling_charts([one.as_dict()])] == ["scaling-efficiency"]


def test_a_regime_out_of_memory_is_an_error_and_the_other_regime_still_counts():
    import torch

    freed = []

    def measure(regime, per_rank):
        if per_rank > 64:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore detail")
        return srow("ddp", 1, regime, 100).as_dict()

    rows, errors = scaling.run_regimes(measure, [("weak", 64), ("strong", 512)], "ddp", 1,
                                       recover=lambda: freed.append(True))
    assert [r["regime"] for r in rows] == ["weak"] and freed == [True]
    assert errors == [{"strategy": "ddp", "world_size": 1, "regime": "strong",
                       "error": "out of memory at per-rank batch 512: CUDA out of memory. Tried to allocate 20.00 GiB"}]
    # an error of another kind is not taken for a full device: it still ends the launch
    with pytest.raises(ValueError):
        scaling.run_regimes(lambda regime, per_rank: (_ for _ in ()).throw(ValueError("bug")),
                            [("weak", 8)], "ddp", 1)


def test_strong_scaling_holds_the_global_batch_asked_for(tmp_path, monkeypatch):
    from mmscale.model.config import ModelConfig
    from mmscale.train.config import TrainConfig

    asked = []

    def launch(world_size, strategy, model_cfg, train_cfg, per_rank_batch, global_batch, *args, **kwargs):
        asked.append((world_size, global_batch))
        return [srow(strategy, world_size, "weak", 100).as_dict()], []

    monkeypatch.setattr(scaling, "launch", launch)
    scaling.run_scaling(ModelConfig(), TrainConfig(), [1, 2, 4], ["ddp"], 16, 1, 0, "cpu", tmp_path)
    assert asked == [(1, 64), (2, 64), (4, 64)]  # default: per-rank batch x the largest world
    asked.clear()
    _, errors = scaling.run_scaling(ModelConfig(), TrainConfig(), [1, 2, 4], ["ddp"], 16, 1, 0, "cpu", tmp_path,
                                    strong_global_batch=6)
    assert asked == [(1, 6), (2, 6), (4, 0)]  # 6 over 4 ranks: no strong regime in that launch
    assert errors == [{"strategy": "ddp", "world_size": 4, "regime": "strong",
                       "error": "the strong-scaling global batch 6 does not split evenly over 4 ranks"}]
