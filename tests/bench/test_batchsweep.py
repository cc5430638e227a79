"""Batch sweep: OOM caught and recorded on constructed allocation failures, fits and knee."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmscale.bench import batchsweep as bs

MIB = 2**20


def fake_factory(oom_above: int, bytes_per_sample: int = 0, error: type = torch.cuda.OutOfMemoryError):
    """Each step holds ``batch * bytes_per_sample`` of touched host memory; too large a batch fails
    the way a real CUDA allocation does."""
    built = []

    def make(batch: int):
        built.append(batch)

        def step():
            if batch > oom_above:
                raise error("CUDA out of memory. Tried to allocate 2.00 GiB")
            if bytes_per_sample:
                block = np.ones(batch * bytes_per_sample, dtype=np.uint8)  # touched: resident
                assert block[-1] == 1
        return step

    make.built = built
    return make


def test_is_oom_recognizes_allocation_failures_only():
    assert bs.is_oom(torch.cuda.OutOfMemoryError("x"))
    assert bs.is_oom(MemoryError())
    assert bs.is_oom(bs.SimulatedOOM("cap"))
    assert bs.is_oom(RuntimeError("CUDA error: out of memory"))
    assert not bs.is_oom(RuntimeError("shape mismatch"))
    assert not bs.is_oom(ValueError("out of memory"))


def test_sweep_catches_oom_then_bisects_and_the_process_goes_on():
    make = fake_factory(oom_above=100)
    settings = bs.SweepSettings(start_batch=8, max_batch=1024, warmup_steps=1, timed_steps=2, bisect_steps=8)
    rows = bs.sweep(make, "fake", settings)
    doubling = [(r.batch_size, r.status) for r in rows if r.phase == "double"]
    assert doubling == [(8, "ok"), (16, "ok"), (32, "ok"), (64, "ok"), (128, "oom")]
    bisect = [r for r in rows if r.phase == "bisect"]
    assert bisect and [r.batch_size for r in bisect][0] == 96
    oom = next(r for r in rows if r.status == "oom")
    assert "OutOfMemoryError" in oom.error and not oom.oom_simulated
    analysis = bs.analyze(rows, capacity_bytes=None)
    assert analysis["found_max_batch"] == 100 and analysis["first_oom_batch"] == 101
    # the sweep did not stop the process: a later sweep still runs
    assert bs.sweep(fake_factory(oom_above=10**6), "again", bs.SweepSettings(start_batch=2, max_batch=4,
                                                                             timed_steps=1))[0].status == "ok"


def test_a_non_memory_error_is_recorded_and_ends_the_variant():
    rows = bs.sweep(fake_factory(oom_above=4, error=ValueError), "bad",
                    bs.SweepSettings(start_batch=4, max_batch=64, timed_steps=1))
    assert [r.status for r in rows] == ["ok", "error"]
    assert "ValueError" in rows[-1].error


def test_memory_cap_simulates_an_oom_from_measured_host_memory():
    cap = 48 * MIB
    make = fake_factory(oom_above=10**6, bytes_per_sample=MIB)
    settings = bs.SweepSettings(start_batch=8, max_batch=256, warmup_steps=0, timed_steps=1, bisect_steps=2,
                                memory_cap_bytes=cap)
    rows = bs.sweep(make, "capped", settings)
    statuses = {r.batch_size: r.status for r in rows if r.phase == "double"}
    assert statuses[16] == "ok" and statuses[64] == "oom"
    oom = next(r for r in rows if r.status == "oom")
    assert oom.oom_simulated and oom.memory_kind == "host_rss" and oom.peak_bytes > cap
    ok = sorted((r for r in rows if r.status == "ok"), key=lambda r: r.batch_size)
    # each measured peak covers at least the block the step touched (RSS cannot miss it)
    for r in ok:
        assert r.peak_bytes >= 0.9 * r.batch_size * MIB


def row(batch, peak, sps, phase="double", status="ok"):
    return bs.BatchRow("v", batch, phase, status, "gpu_allocated", peak_bytes=peak, samples_per_s=sps,
                       step_ms=1.0 if sps else None)


def test_analyze_fits_bytes_per_sample_and_predicts_the_max_batch():
    fixed, per = 2 * 2**30, 50 * MIB
    rows = [row(b, fixed + per * b, t) for b, t in [(32, 770), (64, 1100), (128, 1400), (256, 1500)]]
    rows += [row(512, None, None, status="oom"), row(384, fixed + per * 384, 1530, "bisect"),
             row(448, None, None, "bisect", "oom")]
    capacity = fixed + per * 400
    a = bs.analyze(rows, capacity)
    assert a["bytes_per_sample"] == pytest.approx(per)
    assert a["fixed_bytes"] == pytest.approx(fixed)
    assert a["linear_memory"] is True
    assert a["predicted_max_batch"] == 400
    assert a["found_max_batch"] == 384 and a["first_oom_batch"] == 448
    assert a["prediction_error_rel"] == pytest.approx(400 / 384 - 1)
    assert a["knee_batch"] == 128


def test_analyze_calls_quadratic_memory_not_linear():
    rows = [row(b, 1000 * b * b, 1.0) for b in (8, 16, 32, 64, 128)]
    assert bs.analyze(rows, None)["linear_memory"] is False


def test_variants_registry_and_fsdp_needs_ranks():
    assert {"fp32", "bf16", "bf16+ckpt", "fsdp"} <= set(bs.VARIANTS)
    assert bs.variant_unavailable_reason("fp32", "cpu") is None
    assert "shard" in bs.variant_unavailable_reason("fsdp", "cuda", world_size=1)
    assert bs.variant_unavailable_reason("fsdp", "cuda", world_size=2) is None
    assert "unknown" in bs.variant_unavailable_reason("int4", "cpu")


def test_model_step_factory_runs_the_real_training_step():
    from mmscale.model.config import ModelConfig
    from mmscale.train.config import TrainConfig

    torch.set_num_threads(1)
    model_cfg = ModelConfig(image_encoder="vit_tiny_patch16_224", image_size=32, image_patch_size=8, image_depth=1,
                            text_encoder="bert-tiny", max_text_len=8, hidden_dim=32, num_heads=2, embed_dim=16)
    make = bs.model_step_factory(model_cfg, TrainConfig(), "fp32+ckpt", "cpu")
    rows = bs.sweep(make, "fp32+ckpt", bs.SweepSettings(start_batch=2, max_batch=4, timed_steps=1))
    assert [r.status for r in rows] == ["ok", "ok"] and all(r.samples_per_s > 0 for r in rows)


# The message PyTorch raised at batch 2560 of the bf16+ckpt sweep on an H100 (base model).
H100_OOM = ("CUDA out of memory. Tried to allocate 2.17 GiB. GPU 0 has a total capacity of 79.18 GiB of which "
            "1.88 GiB is free. Including non-PyTorch memory, this process has 77.29 GiB memory in use. Of the "
            "allocated memory 59.73 GiB is allocated by PyTorch, and 16.80 GiB is reserved by PyTorch but "
            "unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.")


def test_oom_message_gives_the_fragmented_memory_and_the_verdict_names_it():
    from mmscale.validate.sections import batchsweep_verdicts

    assert bs.oom_unallocated_bytes(H100_OOM) == int(16.80 * 2**30)
    assert bs.oom_unallocated_bytes("CUDA out of memory. Tried to allocate 2.00 GiB") is None
    assert bs.oom_unallocated_bytes("... and 512.00 MiB is reserved by PyTorch but unallocated") == 512 * MIB

    fixed, per = 2 * 2**30, 50 * MIB
    rows = [row(b, fixed + per * b, 1000) for b in (32, 64, 128, 256)]
    oom = row(512, None, None, status="oom")
    oom.unallocated_reserved_bytes = bs.oom_unallocated_bytes(H100_OOM)
    rows += [oom, row(320, fixed + per * 320, 1000, "bisect"), row(384, None, None, "bisect", "oom")]
    a = bs.analyze(rows, capacity_bytes=fixed + per * 400)
    assert a["unallocated_at_first_oom_bytes"] is None  # the first OOM above the largest fit is 384, no message
    rows[-1].unallocated_reserved_bytes = oom.unallocated_reserved_bytes
    a = bs.analyze(rows, capacity_bytes=fixed + per * 400)
    assert a["unallocated_at_first_oom_bytes"] == oom.unallocated_reserved_bytes
    texts = [v["text"] for v in batchsweep_verdicts("bf16+ckpt", a)]
    assert any("fragmentation" in t and "16.8 GiB" in t for t in texts), texts
    a_close = dict(a, prediction_error_rel=0.05)
    assert not any("fragmentation" in v["text"] for v in batchsweep_verdicts("bf16+ckpt", a_close))


def test_a_size_the_compiled_code_pins_recompiles_instead_of_ending_the_sweep():
    # the H100 case: compiled code that pins the batch to one size (here an equality branch) failed
    # with a ConstraintViolationError under a strict mark_dynamic and ended the variant at that size
    def pins_eight(x):
        return x * 2 if x.shape[0] == 8 else x + 1

    torch._dynamo.reset()
    compiled = torch.compile(pins_eight, backend="eager")
    for size in (2, 4, 8, 16):
        (x,) = bs.mark_batch_dynamic((torch.ones(size, 3),))
        assert torch.equal(compiled(x), pins_eight(torch.ones(size, 3)))


def test_an_error_row_is_named_in_the_analysis_and_a_verdict():
    from mmscale.validate.sections import batchsweep_verdicts

    rows = bs.sweep(fake_factory(oom_above=4, error=ValueError), "bf16",
                    bs.SweepSettings(start_batch=2, max_batch=64, timed_steps=1))
    a = bs.analyze(rows, capacity_bytes=None)
    assert (a["found_max_batch"], a["error_batch"], a["first_oom_batch"]) == (4, 8, None)
    warned = [v["text"] for v in batchsweep_verdicts("bf16", a) if v["level"] == "warn"]
    assert warned and "batch 8" in warned[0] and "ValueError" in warned[0] and "not a memory limit" in warned[0]
