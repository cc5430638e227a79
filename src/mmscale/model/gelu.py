"""GELU with erf evaluated by a short rational polynomial: the same function, fewer instructions.

The exact (erf) GELU that timm's ViT and BERT use compiles, under Inductor, to kernels that call
libdevice's ``erf`` (and ``exp`` in the backward). Counted on an H200 for a ViT-B MLP activation
at batch 128, those kernels move their bytes at 55-62% of the memory bandwidth: the arithmetic
per element, not the memory, sets their time. Here erf comes from Abramowitz & Stegun's formula
7.1.26, ``erf(z) = 1 - t (a1 + t (a2 + ... a5 t)) exp(-z^2)`` with ``t = 1 / (1 + p z)`` for
``z >= 0`` (odd symmetry for ``z < 0``), whose absolute error is at most 1.5e-7: the level of
fp32 rounding, far below the bf16 resolution the activations are stored in. The backward shares
the forward's ``exp(-x^2/2)`` (the normal density) and needs no second transcendental.

``model.gelu=erf_poly`` swaps this module into the whole model (``use_erf_poly_gelu``); the
default, ``erf``, keeps torch's GELU. Whether it pays is measured, not assumed:
``benchmarks/gelu_kernels.py`` times both against a plain copy of the same bytes (on an H200,
the polynomial's kernels reach the copy's bandwidth, 1.4x-1.7x torch's; BENCHMARKS.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Abramowitz & Stegun 7.1.26
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LOG2E = 1.0 / math.log(2.0)


def _cdf_and_density(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The standard normal's CDF Phi(x) (via the polynomial) and density phi(x), in fp32.

    The polynomial approximates erfc(|z|) (absolute error <= 1.5e-7); the lower tail takes
    Phi(x) = erfc(|z|) / 2 directly rather than 1 + erf, which would cancel.
    ``t = rsqrt(u)^2`` rather than ``1 / u`` and ``exp2`` rather than ``exp``: on a GPU these are
    one special-function instruction each (about 2 ulp), where an IEEE division and libdevice's
    ``exp`` take a dozen; their error stays far below the polynomial's 1.5e-7."""
    z = x * _INV_SQRT2
    a = z.abs()
    r = torch.rsqrt(1.0 + _P * a)
    t = r * r
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    gauss = torch.exp2(a * a * -_LOG2E)  # exp(-x^2 / 2): erfc's factor and, scaled, the density
    half_erfc = 0.5 * poly * gauss
    return torch.where(z < 0, half_erfc, 1.0 - half_erfc), _INV_SQRT_2PI * gauss


def gelu_erf_poly(x: torch.Tensor) -> torch.Tensor:
    """x * Phi(x), computed in fp32 and returned in x's dtype (no autograd graph of its own)."""
    xf = x.float()
    cdf, _ = _cdf_and_density(xf)
    return (xf * cdf).to(x.dtype)


def gelu_erf_poly_backward(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), times the incoming gradient, in grad's dtype."""
    xf = x.float()
    cdf, density = _cdf_and_density(xf)
    return (grad.float() * (cdf + xf * density)).to(grad.dtype)


class _GeluErfPoly(torch.autograd.Function):
    """Forward and backward as written above: autograd does not differentiate the polynomial."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return gelu_erf_poly(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return gelu_erf_poly_backward(grad, x)


class ErfPolyGELU(nn.Module):
    """Drop-in for ``nn.GELU()`` (the erf form): same function within 1.5e-7 of erf.

    Only under ``torch.compile``, where Inductor fuses the polynomial into one kernel; run
    eagerly, its dozen operations would each be a kernel, so eager calls keep torch's GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            return F.gelu(x)
        return _GeluErfPoly.apply(x)


def use_erf_poly_gelu(module: nn.Module) -> int:
    """Replace every exact GELU under ``module`` (``nn.GELU`` without the tanh approximation,
    transformers' ``GELUActivation``) by ``ErfPolyGELU``; returns how many were replaced.

    A tanh-approximated GELU is a different function and is left alone."""
    replaced = 0
    for name, child in list(module.named_children()):
        if _is_exact_gelu(child):
            setattr(module, name, ErfPolyGELU())
            replaced += 1
        else:
            replaced += use_erf_poly_gelu(child)
    return replaced


def _is_exact_gelu(module: nn.Module) -> bool:
    if isinstance(module, nn.GELU):
        return module.approximate == "none"
    # transformers' GELUActivation is the erf form (F.gelu, or its Python twin); its tanh, fast
    # and quick variants are other classes and stay
    return type(module).__name__ == "GELUActivation"
