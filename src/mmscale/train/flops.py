"""FLOPs of one training step (counted, not guessed) and the device peaks MFU is measured against.

The count runs the real forward + backward once under ``torch.utils.flop_counter.FlopCounterMode``
(matmuls, convolutions and attention; elementwise work is not counted, as in every MFU figure).
The RNG is forked so the count does not shift the training run's random stream.
"""

from __future__ import annotations

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode


# bf16 dense tensor-core peaks, TFLOP/s (no sparsity). Sources: NVIDIA datasheets
# (H100 SXM5/H200: "BF16 Tensor Core 1,979 TFLOPS with sparsity" -> 989.4 dense; H100 PCIe 1,513
# -> 756.5; A100: 312; L40S 733 sparse -> 366; L4 242.5 sparse -> 121; A10: 125).
# Order matters: first substring of torch.cuda.get_device_name() that matches wins.
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("H200", 989.4),
    ("H100 PCIe", 756.5),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 366.0),
    ("L4", 121.0),
    ("A10", 125.0),
]


def _count_cpu_attention() -> None:
    """Give the CPU flash-attention kernel the GPU kernels' FLOP formula.

    FlopCounterMode knows the CUDA SDPA kernels (flash, efficient, cuDNN) but not
    ``_scaled_dot_product_flash_attention_for_cpu``, so on CPU it would miss the attention
    matmuls (6.1 of 183.5 GFLOP per sample for the base preset).
    """
    aten = torch.ops.aten
    for name, formula in (("_scaled_dot_product_flash_attention_for_cpu", "sdpa_flop"),
                          ("_scaled_dot_product_flash_attention_for_cpu_backward", "sdpa_backward_flop")):
        op = getattr(aten, name, None)
        fn = getattr(flop_counter, formula, None)
        if op is None or fn is None or op in flop_counter.flop_registry:
            continue
        try:
            flop_counter.register_flop_formula(op, get_raw=True)(fn)  # fn is already shape-wrapped
        except Exception:  # a private API: without it CPU counts only miss attention
            pass


_count_cpu_attention()


def peak_tflops(device: torch.device, override: float = 0.0) -> float | None:
    """The override when given, else the table entry for this GPU, else None (unknown, e.g. CPU)."""
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS:
        if key in name:
            return value
    return None


def mfu(flops_per_step: float, steps: int, seconds: float, peak: float | None) -> float | None:
    """Model FLOPs utilization: achieved FLOP/s per device over the device peak (pure function).

    ``flops_per_step`` is the count for one process's share of an optimizer step.
    """
    if not peak or seconds <= 0 or not flops_per_step:
        return None
    return flops_per_step * steps / seconds / (peak * 1e12)


def count_train_flops(model: torch.nn.Module, pixels, ids, mask, autocast=None) -> int:
    """FLOPs of forward + backward of ``model(pixels, ids, mask)['loss']`` on this batch.

    Gradients produced by the count are dropped; the caller's optimizer state is untouched.
    """
    devices = [pixels.device] if pixels.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        counter = FlopCounterMode(display=False)
        with counter:
            if autocast is not None:
                with autocast:
                    loss = model(pixels, ids, mask)["loss"]
            else:
                loss = model(pixels, ids, mask)["loss"]
            loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())
