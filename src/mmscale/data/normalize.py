"""Normalize on the device: workers ship uint8 (4x fewer bytes than float32), the GPU does the math.

``(x / 255 - mean) / std`` is folded into one multiply-add: ``x * scale + bias``.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_CONSTANTS: dict[tuple[str, int | None], tuple[torch.Tensor, torch.Tensor]] = {}


def _scale_bias(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    key = (device.type, device.index)
    if key not in _CONSTANTS:
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
        scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1)  # (1, 3, 1, 1)
        bias = (-mean / std).view(1, 3, 1, 1)
        _CONSTANTS[key] = (scale.to(device), bias.to(device))
    return _CONSTANTS[key]


def to_model_input(images_uint8: torch.Tensor, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` -> normalized ``dtype`` ``[B, 3, H, W]`` on ``device``.

    The copy is ``non_blocking`` (asynchronous when the source is pinned); the arithmetic runs in
    float32 and is cast once at the end so bf16/fp16 inputs round only once.
    """
    if images_uint8.dtype != torch.uint8 or images_uint8.dim() != 4 or images_uint8.shape[1] != 3:
        raise ValueError(f"expected uint8 [B, 3, H, W], got {images_uint8.dtype} {tuple(images_uint8.shape)}")
    device = torch.device(device) if device is not None else images_uint8.device
    x = images_uint8.to(device, non_blocking=True).float()
    scale, bias = _scale_bias(device)
    torch.addcmul(bias, x, scale, out=x)  # x * scale + bias, one kernel, in place (no second [B,3,H,W] buffer)
    return x if dtype == torch.float32 else x.to(dtype)
