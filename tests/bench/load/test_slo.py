"""SLO parsing and the capacity search on simulated latency curves with a known knee."""

import pytest

from mmscale.bench.load.slo import Slo, parse_slo, search_capacity
from mmscale.errors import ConfigError


def test_parse_slo():
    assert parse_slo("p99=100ms") == Slo(99.0, 100.0)
    assert parse_slo("p90 = 0.25s") == Slo(90.0, 250.0)
    assert str(parse_slo("p99.9=5ms")) == "p99.9<=5ms"
    for bad in ("99=100ms", "p99<100", "p0=1ms", "p101=1ms", "p99=0ms", ""):
        with pytest.raises(ConfigError, match="slo"):
            parse_slo(bad)


def queue_curve(capacity, base_ms=10.0):
    """M/M/1-like: latency = base / (1 - load/capacity), infinite at and beyond capacity."""
    def measure(load):
        return (base_ms / (1 - load / capacity) if load < capacity else float("inf")), False
    return measure


def test_rate_search_finds_the_known_knee():
    # p99 <= 100 ms with base 10 ms: 1 - r/C = 0.1 -> r = 0.9 C
    result = search_capacity(queue_curve(1000.0), parse_slo("p99=100ms"), low=10, high=100_000, rel_tol=0.02)
    assert result.capacity == pytest.approx(900.0, rel=0.03) and result.capacity <= 900.0
    assert not result.capped
    assert all(p.passed for p in result.probes if p.load < 899)
    assert not any(p.passed for p in result.probes if p.load > 901)


def test_concurrency_search_finds_the_knee_exactly():
    # closed loop: latency flat at 5 ms until 48 users saturate, then grows linearly (Little's law)
    def measure(users):
        return 5.0 * max(1.0, users / 48), False
    result = search_capacity(measure, parse_slo("p99=20ms"), low=1, high=1024, integer=True)
    assert result.capacity == 192  # 5 * 192/48 = 20 ms; 193 is over


def test_errors_count_as_failure():
    def measure(load):
        return 1.0, load > 300  # fast, but rejecting beyond 300 req/s
    result = search_capacity(measure, parse_slo("p99=100ms"), low=10, high=10_000, rel_tol=0.01)
    assert 297 <= result.capacity <= 300


def test_capped_and_impossible_searches():
    passing = search_capacity(lambda load: (1.0, False), parse_slo("p99=100ms"), low=1, high=64, integer=True)
    assert passing.capacity == 64 and passing.capped
    failing = search_capacity(lambda load: (500.0, False), parse_slo("p99=100ms"), low=1, high=64)
    assert failing.capacity is None and len(failing.probes) == 1
