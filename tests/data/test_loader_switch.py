"""What switching input paths mid-run needs from the loader: an explicit path, a shared index,
and ``close`` stopping persistent workers that prefetched past the switch."""

import torch

from mmscale.data.config import DataConfig
from mmscale.data.loader import build_loader


def cfg(path, **kw):
    base = dict(path=str(path), image_size=32, max_text_len=16, num_workers=0, shuffle=True, seed=1)
    base.update(kw)
    return DataConfig(**base)


def test_explicit_gpu_path_on_cpu_decodes_the_same_rows(good_dataset, tokenizer):
    cpu = build_loader(cfg(good_dataset), 4, tokenizer, decode="cpu")
    gpu = build_loader(cfg(good_dataset), 4, tokenizer, decode="gpu", reuse=cpu)
    assert (cpu.decode, gpu.decode) == ("cpu", "gpu") and gpu.gpu_decoder is not None
    assert gpu.opened.index is cpu.opened.index  # the manifest was indexed once
    a, b = next(iter(cpu)), next(iter(gpu))
    assert a.indices.tolist() == b.indices.tolist() and b.images.shape == (4, 3, 32, 32)
    assert b.images.dtype == torch.uint8
    # same decoded content up to the resize implementation (PIL vs antialiased interpolate)
    assert (a.images.float() - b.images.float()).abs().mean() < 12


def test_auto_without_cuda_builds_cpu(good_dataset, tokenizer):
    assert build_loader(cfg(good_dataset, decode="auto"), 4, tokenizer).decode == "cpu"


def test_close_stops_persistent_workers_mid_epoch(good_dataset, tokenizer):
    loader = build_loader(cfg(good_dataset, num_workers=2, prefetch_factor=2), 2,
                          tokenizer)
    batches = iter(loader)
    next(batches)
    workers = list(loader.dataloader._iterator._workers)
    assert workers and all(w.is_alive() for w in workers)
    batches.close()
    assert all(w.is_alive() for w in workers)  # persistent: an abandoned iteration keeps them
    loader.close()
    for w in workers:
        w.join(timeout=10)
    assert not any(w.is_alive() for w in workers) and loader.dataloader._iterator is None
    # the position is that of the batches handed out, not of what the workers prefetched
    assert loader.state_dict() == {"epoch": 0, "sample_offset": 2}
