"""Input variant rows must not time each other's leftovers: ``quiet`` ends a row for good."""

import threading

import torch
from torch.utils.data import DataLoader

from mmscale.bench.pipeline.run import cycle
from mmscale.bench.pipeline.variants import quiet
from mmscale.data.config import DataConfig
from mmscale.data.loader import build_loader
from tests.data.conftest import good_dataset, tokenizer  # noqa: F401 (fixtures)


def decode_threads():
    return {t for t in threading.enumerate() if t.name == "mmscale-gpu-decode"}


def test_quiet_stops_a_gpu_path_rows_threads_and_workers(good_dataset, tokenizer):  # noqa: F811
    cfg = DataConfig(path=str(good_dataset), image_size=32, max_text_len=16, num_workers=2, prefetch_factor=2)
    loader = build_loader(cfg, 2, tokenizer, decode="gpu")  # the GPU path's code, on the CPU device
    before = decode_threads()
    batches = cycle(lambda: loader)
    assert next(batches).images.shape == (2, 3, 32, 32)
    workers = list(loader.dataloader._iterator._workers)
    assert all(w.is_alive() for w in workers) and len(decode_threads() - before) == 2
    quiet(batches, loader)
    assert decode_threads() <= before
    assert not any(w.is_alive() for w in workers)


def test_quiet_stops_a_plain_dataloaders_persistent_workers():
    loader = DataLoader(torch.arange(64), batch_size=4, num_workers=2, persistent_workers=True)
    batches = cycle(lambda: loader)  # how the rows read their loaders
    next(batches)
    workers = list(loader._iterator._workers)
    quiet(batches, loader)
    assert not any(w.is_alive() for w in workers)



def test_the_step_graph_row_is_skipped_without_cuda_even_when_compile_runs_on_cpu(monkeypatch):
    from types import SimpleNamespace

    from mmscale.bench.pipeline import variants as pipeline_variants

    asked = {}
    monkeypatch.setattr(pipeline_variants, "_synthetic_rows",
                        lambda ctx, group, variants: asked.update(dict(variants)) or [])
    for device, compile_on_cpu in (("cpu", True), ("cpu", False)):
        ctx = SimpleNamespace(device=torch.device(device), cfg=SimpleNamespace(compile_on_cpu=compile_on_cpu))
        pipeline_variants.compile_variants(ctx)
        assert asked["compile_step_graph"]["step_graph"] is True
        assert asked["compile_step_graph"]["skip"], (device, compile_on_cpu)
        assert bool(asked["compile"]["skip"]) == (not compile_on_cpu)
