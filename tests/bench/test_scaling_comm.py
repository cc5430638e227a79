"""Bytes each strategy moves per step, hand-counted, and the link time they imply."""

from __future__ import annotations

import pytest

from mmscale.bench import scaling_comm


def test_ddp_all_reduces_every_fp32_gradient():
    # 2 ranks, 100 + 20 params: all-reduce bus bytes = 2 * (1/2) * 4 B * 120
    assert scaling_comm.bus_bytes_per_step("ddp", 2, 100, 20) == {"all_reduce": 480.0}
    # 4 ranks: 2 * 3/4 * 4 * 120
    assert scaling_comm.bus_bytes_per_step("ddp", 4, 100, 20) == {"all_reduce": 720.0}


def test_fsdp_gathers_blocks_twice_when_resharding_and_the_root_once():
    # 2 ranks, bf16 gather: (100 blocks * 2 + 20 root) * 2 B * 1/2; reduce-scatter 120 * 4 B * 1/2
    moved = scaling_comm.bus_bytes_per_step("fsdp", 2, 100, 20, gather_bytes=2)
    assert moved == {"all_gather": 220.0, "reduce_scatter": 240.0}
    kept = scaling_comm.bus_bytes_per_step("fsdp", 2, 100, 20, gather_bytes=2, reshard_after_forward=False)
    assert kept == {"all_gather": 120.0, "reduce_scatter": 240.0}


def test_one_rank_moves_nothing_and_an_unknown_strategy_is_named():
    assert scaling_comm.bus_bytes_per_step("ddp", 1, 100, 20) == {}
    with pytest.raises(ValueError, match="zero"):
        scaling_comm.bus_bytes_per_step("zero", 2, 100, 20)


def test_link_time_sums_each_collective_at_its_own_bandwidth():
    moved = {"all_gather": 2e9, "reduce_scatter": 1e9}
    assert scaling_comm.ms_at_link(moved, {"all_gather": 200.0, "reduce_scatter": 100.0}) == pytest.approx(20.0)
    assert scaling_comm.ms_at_link(moved, {"all_gather": 200.0}) is None  # reduce-scatter unmeasured
