"""Attention implementation sweep: fusion forward+backward time and peak memory over text
lengths and batch sizes, for every entry of ``FUSIONS`` and (on CUDA) every SDPA backend.

The fusion's cost grows with image tokens x text tokens x batch; the reference design
(``nn.MultiheadAttention``, sequence-first, no mask) and ours (SDPA with the padding mask) are
run on identical inputs. A point that runs out of memory is recorded as such, not dropped.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import asdict, dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from mmscale.model.config import ModelConfig
from mmscale.model.fusion import FUSIONS


@dataclass
class AttentionRow:
    impl: str
    text_len: int
    batch: int
    image_tokens: int
    dtype: str
    ms: float | None  # median fwd+bwd per call
    peak_mib: float | None  # CUDA peak allocated during the call; None on CPU (not measurable)
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def sdpa_backends() -> dict[str, object]:
    """Name -> ``SDPBackend`` that can be forced with ``torch.nn.attention.sdpa_kernel``."""
    names = {"flash": "FLASH_ATTENTION", "mem_efficient": "EFFICIENT_ATTENTION", "math": "MATH",
             "cudnn": "CUDNN_ATTENTION"}
    return {k: getattr(SDPBackend, v) for k, v in names.items() if hasattr(SDPBackend, v)}


def implementations(device: torch.device) -> dict[str, tuple[str, object]]:
    """Sweep entries: name -> (FUSIONS key, SDPA backend or None)."""
    impls = {name: (name, None) for name in FUSIONS}
    if device.type == "cuda":
        for backend_name, backend in sdpa_backends().items():
            impls[f"fused[{backend_name}]"] = ("fused", backend)
    return impls


def _time_call(fn, device: torch.device, iters: int) -> float:
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()  # host-device sync: read the event pair
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def sweep_attention(model_cfg: ModelConfig, device, text_lens=(32, 64, 128, 256, 512),
                    batches=(8, 32, 128), image_tokens: int = 197, dtype: torch.dtype = torch.float32,
                    iters: int = 5, impls: list[str] | None = None) -> list[AttentionRow]:
    """One row per (implementation, text length, batch). Image/text widths come from the config
    (hidden_dim for both, as after the encoders' projections in the base model)."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    table = implementations(device)
    rows: list[AttentionRow] = []
    torch.manual_seed(0)
    width = model_cfg.hidden_dim
    with warnings.catch_warnings():  # forced SDPA backends warn on every refusal; the row says it
        warnings.simplefilter("ignore", UserWarning)
        for name in impls or list(table):
            _sweep_impl(rows, name, table, model_cfg, text_lens, batches, image_tokens, width, dtype,
                        device, iters, cuda)
    return rows


def _sweep_impl(rows, name, table, model_cfg, text_lens, batches, image_tokens, width, dtype, device, iters, cuda):
    """All (text length, batch) points of one implementation, appended to ``rows``."""
    if name not in table:
        rows.append(AttentionRow(name, 0, 0, image_tokens, str(dtype), None, None, "unknown implementation"))
        return
    fusion_key, backend = table[name]
    cfg = ModelConfig(**{**asdict(model_cfg), "fusion": fusion_key,
                         "fusion_layers": 0 if fusion_key == "reference" else model_cfg.fusion_layers})
    module = FUSIONS[fusion_key](width, width, cfg).to(device)
    for length in text_lens:
        for batch in batches:
            rows.append(_one_point(name, module, backend, length, batch, image_tokens, width, dtype,
                                   device, iters, cuda))
    del module
    if cuda:
        torch.cuda.empty_cache()


def _one_point(name, module, backend, length, batch, image_tokens, width, dtype, device, iters, cuda):
    image = torch.randn(batch, image_tokens, width, device=device, requires_grad=True)
    text = torch.randn(batch, length, width, device=device, requires_grad=True)
    mask = torch.ones(batch, length, dtype=torch.long, device=device)
    mask[:, length // 2:] = 0  # half padding: the reference attends to it anyway, ours masks it
    def autocast_ctx():
        return torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    def kernel():  # a fresh context each call: generator-based contexts enter only once
        if backend is None:
            return contextlib.nullcontext()
        return sdpa_kernel([backend])

    def call():
        with kernel(), autocast_ctx():
            out = module(image, text, mask)
        out.float().sum().backward()

    row = AttentionRow(name, length, batch, image_tokens, str(dtype).replace("torch.", ""), None, None)
    try:
        call()  # warm-up (and the backend's availability check)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        row.ms = _time_call(call, device, iters)
        if cuda:
            row.peak_mib = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    except torch.cuda.OutOfMemoryError:
        row.note = "out of memory"
    except RuntimeError as exc:  # e.g. a backend that refuses these shapes/dtypes
        row.note = f"unsupported: {str(exc).splitlines()[0][:120]}"
    finally:
        module.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.empty_cache()
    return row
