"""The padded batch sizes the server runs: every batch is padded up to a bucket, so a device sees
few shapes (``predictor`` pads to them, ``cuda_graphs`` captures one graph per bucket)."""

from __future__ import annotations


def buckets_up_to(n: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers of two and 1.5x between) up to the first >= n."""
    out, k = [1, 2], 2
    while out[-1] < n:
        out += [3 * k // 2, 2 * k]
        k *= 2
    return [b for b in out if b < n] + [next(b for b in out if b >= n)]


def next_bucket(n: int) -> int:
    """Smallest bucket >= n. Padding batches to ~20 sizes (at most 1.5x the rows) keeps the
    shapes a device sees few: every new shape can cost a kernel-plan build (cuDNN attention,
    cuBLASLt), which showed as 1-4 s stalls on H100 when batches were padded to fit."""
    return buckets_up_to(n)[-1]


def bucket_at_most(n: int) -> int:
    """Largest bucket <= n (n >= 1): the batch that fills its padded shape exactly."""
    return max(b for b in buckets_up_to(n) if b <= n)
