"""Load statistics on constructed records: open-loop latency counts from the scheduled time."""

import pytest

from mmscale.bench.load.stats import Records, client_cpu_pct, fell_behind, summarize


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


def test_a_budget_spent_early_is_not_diluted_by_the_idle_rest_of_the_window():
    # 8 s window, the budget of 2,000 requests offered over the first 0.5 s, the last answered at 0.54 s:
    # throughput is over the 0.54 s measured, not the 8 s window (which would read exactly 250 req/s)
    rec = records([(k / 4000, k / 4000, k / 4000 + 0.04, 200) for k in range(2000)])
    stats = summarize([(rec, 0.0, 0.49975)])
    assert stats.duration_s == pytest.approx(0.49975 + 0.04)
    assert stats.throughput_per_s == pytest.approx(2000 / 0.53975)
    assert stats.achieved_rate_per_s == pytest.approx(2000 / 0.49975)  # sent at 4,000/s while offered


def test_pooled_windows_each_count_their_own_measured_time():
    early = records([(k / 100, k / 100, k / 100 + 0.01, 200) for k in range(100)])  # budget gone at 0.99 s
    full = records([(10 + k / 100, 10 + k / 100, 10 + k / 100 + 0.01, 200) for k in range(300)])  # 3 s window
    stats = summarize([(early, 0.0, 0.99), (full, 10.0, 3.0)])
    assert stats.duration_s == pytest.approx(1.0 + 3.0)
    assert stats.throughput_per_s == pytest.approx(100.0)


def test_sends_that_ran_late_stretch_the_send_span_and_miss_the_offered_rate():
    # 100 requests due over 1 s, the client sent them over 2 s: it offered 50/s, not 100/s
    rec = records([(k / 100, 2 * k / 100, 2 * k / 100 + 0.001, 200) for k in range(100)])
    stats = summarize([(rec, 0.0, 1.0)])
    assert stats.send_span_s == pytest.approx(1.98)
    assert stats.achieved_rate_per_s == pytest.approx(100 / 1.98)
    assert fell_behind(100.0, stats.requests, stats.send_span_s, 0.0)
    on_time = summarize([(records([(k / 100, k / 100, k / 100 + 0.001, 200) for k in range(100)]), 0.0, 1.0)])
    assert not fell_behind(100.0, on_time.requests, on_time.send_span_s, on_time.send_lag_p99_ms)


def test_no_answered_request_leaves_latency_undefined_and_throughput_zero():
    stats = summarize([(records([(0, 0, 0.05, 503)] * 4), 0.0, 1.0)], slo_ms=100.0)
    assert stats.ok == 0 and stats.throughput_per_s == 0.0 and stats.goodput_per_s == 0.0
    assert all(v != v for v in (stats.p50_ms, stats.p99_ms, stats.max_ms, stats.mean_ms))  # nan
    assert stats.refused_p99_ms == pytest.approx(50.0)


def test_fell_behind():
    assert not fell_behind(100.0, 1000, 10.0, 1.0)
    assert not fell_behind(100.0, 960, 10.0, 1.0)  # within Poisson noise and 5%
    assert fell_behind(100.0, 800, 10.0, 1.0)
    assert fell_behind(100.0, 1000, 10.0, 50.0)  # on count, but sends ran late
    assert not fell_behind(0.0, 0, 10.0, 0.0)


def test_client_cpu():
    assert client_cpu_pct([{"cpu_s": 0.5, "wall_s": 1.0}, {"cpu_s": 0.2, "wall_s": 1.0}]) == (50.0, pytest.approx(70.0))
