"""The model's match forward at a fixed large batch with no server in front: the throughput the
servers are held to (``best ours req/s / offline samples/s``)."""

from __future__ import annotations

import time

import torch

from mmscale.bench.serving.config import ServeBenchConfig
from mmscale.serve.config import ServeConfig
from mmscale.serve.predictor import match_forward
from mmscale.serve.run import build_predictor

# batch and timed forwards of the offline forward; a cpu_smoke run takes the small pair
OFFLINE_BATCH, OFFLINE_STEPS = 512, 20
SMOKE_OFFLINE_BATCH, SMOKE_OFFLINE_STEPS = 8, 2


def offline_throughput(cfg: ServeBenchConfig) -> dict:
    """samples/s of the match forward (1 image + 1 caption per sample) at batch ``OFFLINE_BATCH``."""
    batch, steps = (SMOKE_OFFLINE_BATCH, SMOKE_OFFLINE_STEPS) if cfg.cpu_smoke else (OFFLINE_BATCH, OFFLINE_STEPS)
    predictor = build_predictor(ServeConfig(device=cfg.device), cfg.checkpoint, cfg.preset)
    model, device, dtype = predictor.model, predictor.device, predictor.dtype
    side = model.cfg.image_size
    pixels = torch.randn(batch, 3, side, side, device=device, dtype=dtype)
    ids = torch.randint(1000, 20000, (batch, predictor.max_text_len), device=device)
    mask = torch.ones_like(ids)
    owner = torch.arange(batch, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            match_forward(model, pixels, ids, mask, owner)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            match_forward(model, pixels, ids, mask, owner)
        sync()  # host sync: end of the timed region
        seconds = time.perf_counter() - start
    out = {"batch": batch, "steps": steps, "samples_per_s": batch * steps / seconds,
           "step_ms": 1000 * seconds / steps, "device": str(device),
           "dtype": str(dtype).replace("torch.", "")}
    del predictor, model, pixels
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the servers measured next get the device memory back
    return out
