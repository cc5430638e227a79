"""Inductor's coordinate-descent tuning for a training run's compile (``train.compile_tuning``).

With it, Inductor times a few block sizes for each Triton kernel it generates and keeps the
fastest, instead of taking its heuristic's choice. The settings are process-wide and read when a
graph is compiled, which in training happens lazily during the first steps, so they are patched
in for the whole run and restored after it: a later run in the same process (a benchmark's next
row) compiles with its own settings. Measured (``base``, batch 128, bf16 weights + step graph,
one H200, BENCHMARKS.md): 1.034x the untuned step, for 368 s of compile and tuning against 46 s.
"""

from __future__ import annotations

import contextlib

INDUCTOR_SETTINGS = {"coordinate_descent_tuning": True}


def compile_tuning(enabled: bool):
    """A context that applies ``INDUCTOR_SETTINGS`` while it is open (nothing when not enabled)."""
    if not enabled:
        return contextlib.nullcontext()
    import torch._inductor.config as inductor_config

    return inductor_config.patch(INDUCTOR_SETTINGS)
