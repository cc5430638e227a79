"""Verdict thresholds: the one place where a PASS/WARN line and a command's help text get their numbers.

A verdict in a report and the target that ``--help`` states must never disagree, so both read
these constants; change one here and the help, the verdict and the report move together.
"""

from __future__ import annotations

DATA_LOADER_SPEEDUP = 1.6
"""Our loader (``ours_cpu``) over the reference DataLoader at equal workers, images/s."""

SCALING_EFFICIENCY = 0.85
"""Multi-GPU scaling efficiency (throughput over N x one rank's) that passes."""

DATASCALE_FIT_R2 = 0.95
"""R² of the training-time line over dataset size that calls time growth linear."""

MAX_BATCH_PREDICTION_REL = 0.10
"""Largest |predicted / found - 1| of the memory fit's max batch that counts as confirmed."""

MEANINGFUL_GAIN_REL = 0.05
"""A measured change helps when it gains more than this over the run's own configuration."""

CEILING_TOLERANCE_REL = 0.05
"""How far a throughput may exceed its measured ceiling (run-to-run noise) before it is flagged."""


def describe() -> str:
    """The thresholds in one line, for help texts."""
    return (f"data loader >= {DATA_LOADER_SPEEDUP:g}x the reference DataLoader; scaling efficiency >= "
            f"{SCALING_EFFICIENCY:g}; datascale time fit R² >= {DATASCALE_FIT_R2:g}; max-batch prediction "
            f"within {100 * MAX_BATCH_PREDICTION_REL:.0f}%; a change is listed when it gains > "
            f"{100 * MEANINGFUL_GAIN_REL:.0f}%")
