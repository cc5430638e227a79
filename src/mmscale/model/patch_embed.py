"""The patch embedding as one matmul (``model.patch_embed=matmul``).

A ViT's patch embedding is a ``Conv2d`` whose kernel equals its stride: each output pixel is
one patch's 3 x 16 x 16 values times a 768 x 768 matrix, with no overlap. cuDNN runs it as a
convolution on the 3-channel NCHW input: on an H200 (``base``, batch 128, bf16) the forward
kernel took 0.69 ms, the weight gradient 0.22 ms and converting the layouts to NHWC 0.60 ms
a step, about 1.5 ms for 30 GFLOP (BENCHMARKS.md). As a matmul the same work is one copy that
cuts the image into rows of patches, then ``(B * 196, 768) @ (768, 768)``, the shape cuBLAS
runs fastest.

The module keeps the convolution's parameters (same names, shapes and values), so checkpoints
are the same with either setting; its output is the convolution's, in the same NCHW shape (a
permuted view: timm flattens it to tokens next, which is then contiguous again).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def is_patch_conv(module: nn.Module) -> bool:
    """A convolution that only ever sees each input pixel once: kernel == stride, no padding,
    dilation or groups."""
    return (isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == tuple(module.stride)
            and module.padding in ((0, 0), "valid") and tuple(module.dilation) == (1, 1)
            and module.groups == 1)


class PatchMatmul(nn.Module):
    """``conv(x)`` for a patch convolution, computed as one matmul over non-overlapping patches."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not is_patch_conv(conv):
            raise ValueError(f"{conv} is not a patch convolution (kernel == stride, no padding)")
        self.kernel_size = tuple(conv.kernel_size)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.weight = conv.weight  # the same Parameter objects: state dict and optimizer unchanged
        self.bias = conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        kh, kw = self.kernel_size
        gh, gw = height // kh, width // kw
        x = x[:, :, :gh * kh, :gw * kw]  # a convolution drops the rows and columns a patch cannot fill
        patches = x.reshape(batch, channels, gh, kh, gw, kw).permute(0, 2, 4, 1, 3, 5)
        out = F.linear(patches.reshape(batch * gh * gw, channels * kh * kw),
                       self.weight.reshape(self.out_channels, -1), self.bias)
        return out.reshape(batch, gh, gw, self.out_channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size=stride={self.kernel_size}"


def use_patch_matmul(module: nn.Module) -> int:
    """Replace every patch convolution inside ``module`` by a ``PatchMatmul``; returns how many."""
    replaced = 0
    for name, child in module.named_children():
        if is_patch_conv(child):
            setattr(module, name, PatchMatmul(child))
            replaced += 1
        else:
            replaced += use_patch_matmul(child)
    return replaced
