"""SLO-bounded capacity search: the highest load whose latency percentile stays within a bound.

``--slo p99=100ms`` -> ``Slo(99, 100.0)``. The search grows the load geometrically from ``low``
until the SLO breaks (or ``high`` is reached), then bisects between the last passing and the
first failing load until they are within ``rel_tol`` (or 1 apart, for concurrency). A load that
produced errors counts as failing: capacity is what the server answers well, not what it drops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from mmscale.errors import ConfigError

SLO_RE = re.compile(r"^\s*p(\d+(?:\.\d+)?)\s*<?=\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")


@dataclass(frozen=True)
class Slo:
    percentile: float
    bound_ms: float

    def __str__(self) -> str:
        return f"p{self.percentile:g}<={self.bound_ms:g}ms"


def parse_slo(text: str) -> Slo:
    """``p99=100ms`` / ``p90=0.2s`` (or ``p99<=100ms``, as a load row names it) -> ``Slo``; a ``ConfigError``
    naming the field otherwise."""
    match = SLO_RE.match(text or "")
    if not match:
        raise ConfigError("slo", f"expected like p99=100ms, got {text!r}")
    q, value, unit = float(match.group(1)), float(match.group(2)), match.group(3)
    if not 0 < q <= 100:
        raise ConfigError("slo", f"percentile must be in (0, 100], got {q:g}")
    bound_ms = value * (1000.0 if unit == "s" else 1.0)
    if bound_ms <= 0:
        raise ConfigError("slo", f"bound must be > 0, got {text!r}")
    return Slo(q, bound_ms)


@dataclass
class Probe:
    load: float
    latency_ms: float
    passed: bool


@dataclass
class SearchResult:
    slo: str
    capacity: float | None
    """Highest load that met the SLO (None: even ``low`` failed)."""
    capped: bool
    """True when ``high`` still passed: the capacity is at least this, not measured exactly."""
    probes: list[Probe] = field(default_factory=list)


def search_capacity(measure: Callable[[float], tuple[float, bool]], slo: Slo, low: float, high: float,
                    integer: bool = False, rel_tol: float = 0.05, growth: float = 2.0,
                    max_probes: int = 16) -> SearchResult:
    """``measure(load) -> (latency_ms at slo.percentile, had_errors)``; returns the capacity.

    Assumes latency grows with load (true of a queue up to noise); noise near the knee can make
    the answer off by one bisection step, which ``rel_tol`` bounds.
    """
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got {low}, {high}")
    probes: list[Probe] = []

    def probe(load: float) -> bool:
        latency_ms, had_errors = measure(load)
        passed = (latency_ms <= slo.bound_ms) and not had_errors
        probes.append(Probe(load, latency_ms, passed))
        return passed

    fix = (lambda x: float(max(1, round(x)))) if integer else float
    good, bad = None, None
    load = fix(low)
    while len(probes) < max_probes:  # grow until the SLO breaks
        if probe(load):
            good = load
            if load >= high:
                return SearchResult(str(slo), good, True, probes)
            load = fix(min(load * growth, high))
        else:
            bad = load
            break
    if good is None:
        return SearchResult(str(slo), None, False, probes)
    while bad is not None and len(probes) < max_probes:  # bisect between good and bad
        if (integer and bad - good <= 1) or (not integer and (bad - good) / good <= rel_tol):
            break
        mid = fix((good + bad) / 2)
        if mid in (good, bad):
            break
        if probe(mid):
            good = mid
        else:
            bad = mid
    return SearchResult(str(slo), good, False, probes)
