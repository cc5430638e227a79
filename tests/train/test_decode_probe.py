"""decode=auto inside training, on CPU: two CPU-backed input paths of different speeds stand in
for cpu and gpu; the faster is kept, and every sample is read once in the uninterrupted order."""

import itertools
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from mmscale.config.load import load_config
from mmscale.data.loader import build_loader
from mmscale.data.sampler import epoch_order
from mmscale.train import TrainJob, train
from tests.train.conftest import TINY_OVERRIDES

N_TRAIN, BATCH = 48, 8  # 6 batches per epoch
PROBE = ["data.decode=auto"]  # with short_probe: 12 steps, no workers
SLOW_S = 0.4  # added per batch to the slowed path: far above a tiny step and a busy host's stalls


@pytest.fixture(autouse=True)
def short_probe(monkeypatch):
    from mmscale.train import decode_probe

    monkeypatch.setattr(decode_probe, "PROBE_WARMUP_STEPS", 1)
    monkeypatch.setattr(decode_probe, "PROBE_TIMED_STEPS", 4)


def recording(log: list, decode: str, delay_s: float = 0.0, fail_after: int | None = None):
    """A ``build_loader``-like factory: path ``decode``, batches' manifest rows appended to ``log``
    as they are handed to training, ``delay_s`` added per batch, or a RuntimeError after N batches."""
    def build(*args, **kw):
        kw["decode"] = decode
        loader = build_loader(*args, **kw)
        inner = loader._batches

        def batches():
            for k, batch in enumerate(inner()):
                if fail_after is not None and k >= fail_after:
                    raise RuntimeError("decoder went away")
                time.sleep(delay_s)
                log.append(batch.indices.tolist())
                yield batch
        loader._batches = batches
        return loader
    return build


def expected_rows(steps: int, seed: int = 0) -> list[int]:
    """The rows an uninterrupted run reads in ``steps`` steps (drop_last: whole batches)."""
    per_epoch = N_TRAIN // BATCH
    rows = []
    for epoch in range(-(-steps // per_epoch)):
        rows += epoch_order(N_TRAIN, seed, epoch, True)[:per_epoch * BATCH].tolist()
    return rows[:steps * BATCH]


def job(data, out, *extra):
    return load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + PROBE + [
        f"data.path={data}", f"train.out_dir={out}", *extra])


def decode_rows(out):
    return [r for r in map(json.loads, open(out / "metrics.jsonl")) if "decode/path" in r]


@pytest.mark.parametrize("workers", [0, 2])
def test_slow_gpu_path_loses_and_no_sample_is_lost_or_repeated(tiny_dataset, tmp_path, workers):
    log: list = []
    paths = {"gpu": recording(log, "cpu", delay_s=SLOW_S), "cpu": recording(log, "cpu")}
    # workers > 0: persistent workers prefetch past the switch, and timing waits for a late batch
    # (up to 2 x 2 more untimed and timed steps): the probe takes 12 to 28 steps
    steps = 14 if workers == 0 else 30
    result = train(job(tiny_dataset, tmp_path, f"train.steps={steps}", f"data.num_workers={workers}",
                       "data.prefetch_factor=2"), decode_paths=paths)
    assert result.decode == "cpu" and result.steps == steps and result.samples == steps * BATCH
    rows = [i for batch in log for i in batch]
    assert len(rows) == steps * BATCH and rows == expected_rows(steps)  # across both switches
    probe = result.decode_probe
    assert probe["plan"] == ["gpu", "cpu"] and probe["timed_steps"]["gpu"] == 4
    assert probe["warmup_steps"]["gpu"] == 1  # every slowed batch is late: timing starts at once
    assert 1 <= probe["warmup_steps"]["cpu"] <= (1 if workers == 0 else 5)
    assert 4 <= probe["timed_steps"]["cpu"] <= (4 if workers == 0 else 8)
    # each path: its untimed steps, its timed steps and the fetch that ended the window
    assert probe["decided_at_step"] == sum(probe["warmup_steps"].values()) + sum(probe["timed_steps"].values()) + 2
    assert probe["step_ms"]["gpu"] > probe["step_ms"]["cpu"] + 0.5 * 1e3 * SLOW_S, probe
    assert probe["data_wait_pct"]["gpu"] > probe["data_wait_pct"]["cpu"]
    (row,) = decode_rows(tmp_path)
    assert row["step"] == probe["decided_at_step"] and row["decode/path"] == "cpu"
    assert row["decode/gpu_step_ms"] == probe["step_ms"]["gpu"]
    assert json.loads((tmp_path / "result.json").read_text())["decode"] == "cpu"


def jpeg_copy(src, dst):
    """The tiny set with JPEG images, so the GPU path's nvjpeg-side code (run on CPU) decodes them."""
    dst.mkdir()
    for split in ("train", "val"):
        rows = [json.loads(line) for line in open(src / f"{split}.jsonl")]
        for row in rows:
            name = row["image"].replace(".png", ".jpg")
            Image.open(src / row["image"]).convert("RGB").save(dst / name, quality=95)
            row["image"] = name
        (dst / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dst


def test_faster_gpu_path_is_kept_with_the_real_raw_decode_path(tiny_dataset, tmp_path):
    data = jpeg_copy(tiny_dataset, tmp_path / "jpeg")
    log: list = []
    # "gpu": the real worker-raw + batch-decode path (on the CPU device it decodes synchronously)
    paths = {"gpu": recording(log, "gpu"), "cpu": recording(log, "cpu", delay_s=SLOW_S)}
    result = train(job(data, tmp_path / "run", "train.steps=14"), decode_paths=paths)
    assert result.decode == "gpu" and result.decode_probe["path"] == "gpu", result.decode_probe
    rows = [i for batch in log for i in batch]
    assert rows == expected_rows(14) and result.samples == 14 * BATCH  # gpu rebuilt at step 12
    assert result.skipped_samples == 0 and result.loss is not None and np.isfinite(result.loss)


def test_failing_gpu_path_falls_back_to_cpu_at_the_right_position(tiny_dataset, tmp_path):
    log: list = []
    paths = {"gpu": recording(log, "cpu", fail_after=2), "cpu": recording(log, "cpu")}
    result = train(job(tiny_dataset, tmp_path, "train.steps=14"), decode_paths=paths)
    assert result.decode == "cpu" and result.steps == 14
    assert result.decode_probe["errors"] == {"gpu": "RuntimeError: decoder went away"}
    assert "gpu failed" in result.decode_probe["reason"]
    # gpu yielded 2 batches then failed; cpu took over at step 2: no row lost or read twice
    assert [i for batch in log for i in batch] == expected_rows(14)


def test_every_path_failing_raises_the_paths_error(tiny_dataset, tmp_path):
    paths = {"gpu": recording([], "cpu", fail_after=0), "cpu": recording([], "cpu", fail_after=0)}
    with pytest.raises(RuntimeError, match="decoder went away"):
        train(job(tiny_dataset, tmp_path, "train.steps=14"), decode_paths=paths)


def test_resume_after_a_probe_reads_the_uninterrupted_order(tiny_dataset, tmp_path):
    log: list = []
    paths = {"gpu": recording(log, "cpu", delay_s=SLOW_S), "cpu": recording(log, "cpu")}
    first = train(job(tiny_dataset, tmp_path, "train.steps=13"), decode_paths=paths)
    assert first.decode == "cpu" and first.decode_probe["decided_at_step"] == 12
    # 5 steps left after the resume: fewer than the 12-step probe, so the rest runs on cpu alone
    second = train(job(tiny_dataset, tmp_path, "train.steps=18", "train.resume=true"), decode_paths=paths)
    assert second.resumed_from_step == 13 and second.steps == 5 and second.decode == "cpu"
    assert "too few" in second.decode_probe["reason"] and "step_ms" not in second.decode_probe
    assert [i for batch in log for i in batch] == expected_rows(18)


def test_fixed_decode_ignores_injected_paths_and_auto_without_cuda_is_cpu(tiny_dataset, tmp_path):
    result = train(job(tiny_dataset, tmp_path / "a", "train.steps=2", "data.decode=cpu"),
                   decode_paths={"gpu": recording([], "cpu", fail_after=0)})
    assert result.decode == "cpu" and result.decode_probe["reason"] == "decode=cpu"
    result = train(job(tiny_dataset, tmp_path / "b", "train.steps=12", "train.device=cpu"))
    assert result.decode == "cpu" and result.decode_probe["plan"] == ["cpu"]
    assert "not CUDA" in result.decode_probe["reason"] and not decode_rows(tmp_path / "b")


class FakeSplit:
    """``SplitBatches``' probe-facing surface over scripted fetch delays (seconds per batch)."""

    def __init__(self, delays: dict):
        self.delays, self.decode, self.loader, self.opened = delays, None, None, []

    def use_decode(self, decode):
        self.decode = decode

    def stream(self, step):
        self.opened.append((self.decode, step))
        for delay in self.delays[self.decode]:
            time.sleep(delay)
            yield self.decode


def test_timing_starts_once_a_batch_is_late_or_after_the_cap():
    from mmscale.train.decode_probe import DecodePlan, DecodeProbe

    # gpu: 5 buffered batches, then every batch late; cpu: never late (timing starts at the cap)
    data = FakeSplit({"gpu": [0.0] * 5 + [0.1] * 20, "cpu": [0.0] * 40})
    plan = DecodePlan(["gpu", "cpu"], "test", warmup_steps=2, max_warmup_steps=12, timed_steps=3, max_timed_steps=9)
    probe = DecodeProbe(data, plan, start_step=7, device=torch.device("cpu"), late_ms=50.0)
    got = list(itertools.islice(iter(probe), 40))
    # gpu: window [5, 8) from the first late batch, ended by the late fetch 8; cpu: [12, 15) at the cap
    assert probe.choice.warmup_steps == {"gpu": 5, "cpu": 12}
    assert probe.choice.timed_steps == {"gpu": 3, "cpu": 3}
    assert probe.choice.path == "cpu" and probe.choice.step_ms["gpu"] >= 100.0
    # the switches happen at the steps reached: 7, 7 + 9 gpu steps, and cpu kept without a rebuild
    assert data.opened == [("gpu", 7), ("cpu", 16)] and probe.choice.decided_at_step == 32
    assert got[:9] == ["gpu"] * 9 and set(got[9:]) == {"cpu"}


def test_fixed_windows_when_lateness_is_ignored():
    """Under torchrun (late_ms=inf) every rank switches and decides at the same steps."""
    import math

    from mmscale.train.decode_probe import DecodePlan, DecodeProbe

    data = FakeSplit({"gpu": [0.0] * 5 + [0.02] * 20, "cpu": [0.0] * 40})
    plan = DecodePlan(["gpu", "cpu"], "test", warmup_steps=2, max_warmup_steps=6, timed_steps=3, max_timed_steps=9)
    probe = DecodeProbe(data, plan, start_step=0, device=torch.device("cpu"), late_ms=math.inf)
    list(itertools.islice(iter(probe), 30))
    assert probe.choice.warmup_steps == {"gpu": 6, "cpu": 6} and probe.choice.timed_steps == {"gpu": 3, "cpu": 3}
    assert data.opened == [("gpu", 0), ("cpu", 10)] and probe.choice.decided_at_step == 20
