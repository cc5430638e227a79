"""A batch's time as a function of its size, fitted online: ``seconds = fixed_s + per_request_s * n``.

Why: admission must know how long a full batch takes while batches are still small. The served
rate (requests over busy time) measured at half-full batches reads a full batch as twice as long as
it is when most of a batch's cost is fixed, so admission held batches small. A weighted
least-squares line through recent (size, time) pairs separates the fixed part from the part that
grows with the batch; kept by hand as five running sums because statistics and numpy refit from
the whole history.
"""

from __future__ import annotations

WEIGHT = 0.05  # of the newest batch: the fit remembers about the last 20 batches
MIN_SIZE_VARIANCE = 1.0  # below this spread of recent sizes (requests^2) the line is not identified


class BatchCost:
    """Exponentially weighted sums of (n, seconds); ``line()`` is None until sizes have varied."""

    def __init__(self):
        self.w = self.n = self.t = self.nn = self.nt = 0.0

    def add(self, size: int, seconds: float) -> None:
        keep = 1.0 - WEIGHT if self.w else 0.0
        self.w = keep * self.w + 1.0
        self.n = keep * self.n + size
        self.t = keep * self.t + seconds
        self.nn = keep * self.nn + size * size
        self.nt = keep * self.nt + size * seconds

    def line(self) -> tuple[float, float] | None:
        """(fixed_s, per_request_s), both >= 0, or None while recent batches were all of one size."""
        if not self.w:
            return None
        mean_n, mean_t = self.n / self.w, self.t / self.w
        variance = self.nn / self.w - mean_n * mean_n
        if variance < MIN_SIZE_VARIANCE:
            return None
        per_request_s = (self.nt / self.w - mean_n * mean_t) / variance
        if per_request_s <= 0:  # time does not grow with size here: all of it is fixed
            return mean_t, 0.0
        fixed_s = mean_t - per_request_s * mean_n
        if fixed_s < 0:  # a line through the origin: all of it grows with size
            return 0.0, mean_t / mean_n
        return fixed_s, per_request_s
