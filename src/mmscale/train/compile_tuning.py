"""Inductor settings for a training run's compile (``train.compile_tuning``,
``train.compile_mix_order_reduction``).

The settings are process-wide and read when a graph is compiled, which in training happens
lazily during the first steps, so they are patched in for the whole run and restored after it:
a later run in the same process (a benchmark's next row) compiles with its own settings.

- ``compile_tuning``: Inductor times a few block sizes for each Triton kernel it generates and
  keeps the fastest, instead of taking its heuristic's choice. Measured (``base``, batch 128,
  bf16 weights + step graph, one H200, BENCHMARKS.md): 1.034x the untuned step, for 368 s of
  compile and tuning against 46 s.
- ``compile_mix_order_reduction=false``: the LayerNorm backward's weight and bias gradients as
  separate column reductions, instead of partial sums in the row kernel that the wrapper then
  finishes with one eager ATen ``sum`` (plus a memset and a cast) per gradient: about 210 fewer
  kernels a step for ``base``.
"""

from __future__ import annotations

import contextlib


def inductor_settings(tuning: bool, mix_order_reduction: bool = True) -> dict:
    """The ``torch._inductor.config`` values the run asks for (empty: Inductor's defaults)."""
    settings = {}
    if tuning:
        settings["coordinate_descent_tuning"] = True
    if not mix_order_reduction:
        settings["triton.mix_order_reduction"] = False
    return settings


def compile_tuning(enabled: bool, mix_order_reduction: bool = True):
    """A context that applies the run's Inductor settings while it is open (nothing when there
    are none)."""
    settings = inductor_settings(enabled, mix_order_reduction)
    if not settings:
        return contextlib.nullcontext()
    import torch._inductor.config as inductor_config

    return inductor_config.patch(settings)
