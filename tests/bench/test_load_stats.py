"""Load statistics on constructed records: open-loop latency counts from the scheduled time."""

import pytest

from mmscale.bench.load_stats import Records, client_cpu_pct, fell_behind, summarize


def records(rows):
    rec = Records()
    for scheduled, sent, done, status in rows:
        rec.scheduled_s.append(scheduled)
        rec.sent_s.append(sent)
        rec.done_s.append(done)
        rec.status.append(status)
    return rec


def test_latency_counts_from_the_scheduled_send_time():
    # sent 0.5 s late (client or server stalled), answered in 10 ms: latency is 510 ms, not 10 ms
    rec = records([(0.0, 0.5, 0.51, 200)] + [(k / 100, k / 100, k / 100 + 0.01, 200) for k in range(1, 100)])
    stats = summarize([(rec, 0.0, 1.0)], slo_ms=100.0)
    assert stats.max_ms == pytest.approx(510.0)
    assert stats.p50_ms == pytest.approx(10.0)
    assert stats.send_lag_p99_ms == pytest.approx(5.0)  # rank 98.01 of 100: 1% of the way to 500 ms
    assert stats.goodput_per_s == pytest.approx(99.0)  # one request missed the SLO


def test_errors_by_status_and_throughput_count_successes_only():
    rec = records([(0, 0, 0.1, 200), (0, 0, 0.1, 503), (0, 0, 0.2, 503), (0, 0, 30.0, -1), (0, 0, 0.0, 0)])
    stats = summarize([(rec, 0.0, 2.0)])
    assert stats.errors_by_status == {"503": 2, "conn_error": 1, "timeout": 1}
    assert stats.ok == 1 and stats.requests == 5
    assert stats.throughput_per_s == pytest.approx(1 / 30.0)  # the straggler stretches the window
    assert stats.p99_ms == pytest.approx(100.0)
    assert 100.0 < stats.refused_p99_ms <= 200.0  # the two 503s took 100 and 200 ms


def test_refusal_latency_is_nan_when_nothing_was_refused():
    stats = summarize([(records([(0, 0, 0.01, 200)]), 0.0, 1.0)])
    assert stats.refused_p99_ms != stats.refused_p99_ms  # nan


def test_windows_pool():
    a = records([(0, 0, 0.01, 200)] * 10)
    b = records([(10, 10, 10.03, 200)] * 10)
    stats = summarize([(a, 0.0, 1.0), (b, 10.0, 1.0)])
    assert stats.ok == 20 and stats.throughput_per_s == pytest.approx(10.0)
    assert stats.p50_ms == pytest.approx(20.0)


def test_fell_behind():
    assert not fell_behind(100.0, 1000, 10.0, 1.0)
    assert not fell_behind(100.0, 960, 10.0, 1.0)  # within Poisson noise and 5%
    assert fell_behind(100.0, 800, 10.0, 1.0)
    assert fell_behind(100.0, 1000, 10.0, 50.0)  # on count, but sends ran late
    assert not fell_behind(0.0, 0, 10.0, 0.0)


def test_client_cpu():
    assert client_cpu_pct([{"cpu_s": 0.5, "wall_s": 1.0}, {"cpu_s": 0.2, "wall_s": 1.0}]) == (50.0, pytest.approx(70.0))
