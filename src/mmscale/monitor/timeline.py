"""Bounded storage for monitor samples: decimated rows plus exact running statistics.

A monitor attached to a day-long training run must not grow without bound, yet the timeline
should still cover the whole run. ``Timeline`` keeps at most ``max_rows`` rows: when full it drops
every other row and from then on keeps only every ``stride``-th sample (stride doubles each time),
so the stored rows always span start to now at an even spacing. Summary statistics do not
suffer from this: count, sum, min and max of every numeric field are updated on every sample.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FieldStats:
    """Running statistics of one numeric field over every sample (not just the stored rows)."""

    n: int = 0
    total: float = 0.0
    lo: float = float("inf")
    hi: float = float("-inf")

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.lo = min(self.lo, value)
        self.hi = max(self.hi, value)

    def as_dict(self) -> dict:
        if not self.n:
            return {"mean": None, "min": None, "max": None, "n": 0}
        return {"mean": self.total / self.n, "min": self.lo, "max": self.hi, "n": self.n}


@dataclass
class Timeline:
    max_rows: int = 4096
    rows: list[dict] = field(default_factory=list)
    stride: int = 1
    n_samples: int = 0
    stats: dict[str, FieldStats] = field(default_factory=dict)

    def __post_init__(self):
        if self.max_rows < 2:
            raise ValueError("max_rows must be at least 2")

    def add(self, row: dict) -> None:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.stats.setdefault(key, FieldStats()).add(float(value))
        if self.n_samples % self.stride == 0:
            self.rows.append(row)
            if len(self.rows) >= self.max_rows:
                self.rows = self.rows[::2]  # keeps sample 0, stride, 2*stride... of the new stride
                self.stride *= 2
        self.n_samples += 1

    def summary(self) -> dict[str, dict]:
        return {key: s.as_dict() for key, s in self.stats.items()}


def read_rows(path: str | Path, offset: int = 0):
    """The sample rows of a JSONL timeline from byte ``offset`` on, one dict at a time; a line that
    is not a sample (a mark, a half line from a writer killed mid-write) is passed over."""
    with Path(path).open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "t_s" in row and "mark" not in row:
                yield row
