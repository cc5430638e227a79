"""What a spawned server reports on /metrics, read from a constructed page."""

import io
import urllib.request

import pytest

from mmscale.bench.serving.server_side import COUNTS, server_side, side_during


def test_server_side_counts_the_tail_from_the_histograms(monkeypatch):
    text = "\n".join([
        'mmscale_batch_size_count{task="match"} 10.0', 'mmscale_batch_size_sum{task="match"} 40.0',
        'mmscale_batch_forward_seconds_count{task="match"} 10.0',
        'mmscale_batch_forward_seconds_sum{task="match"} 0.5',
        'mmscale_batch_forward_seconds_bucket{le="0.1",task="match"} 9.0',  # the order it is rendered in
        'mmscale_request_latency_seconds_count{endpoint="/v1/match"} 40.0',
        'mmscale_request_latency_seconds_bucket{endpoint="/v1/match",le="0.25"} 37.0',
        'mmscale_queue_wait_seconds_count{task="match"} 40.0', 'mmscale_queue_wait_seconds_sum{task="match"} 2.0',
        'mmscale_queue_wait_seconds_bucket{le="0.1",task="match"} 36.0',
        'mmscale_queue_wait_seconds_bucket{le="0.25",task="match"} 38.0', ""])
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(text.encode()))
    side = server_side("http://x")
    assert side["mean_batch"] == 4.0 and side["mean_batch_ms"] == 50.0
    assert side["forwards_over_100ms"] == 1.0 and side["match_requests_over_250ms"] == 3.0
    assert side["match_requests"] == 40.0
    assert side["match_queue_waits_over_100ms"] == 4.0 and side["match_queue_waits_over_250ms"] == 2.0
    before = {**side, "batches": 4.0, "match_requests": 10.0, "match_requests_over_250ms": 3.0}
    during = side_during("http://x", before)  # counters relative to the sweep's start
    assert during["sweep_batches"] == 6.0 and during["sweep_match_requests"] == 30.0
    assert during["sweep_match_requests_over_250ms"] == 0.0 and during["match_requests_over_250ms"] == 3.0
    fresh = side_during("http://x", {key: float("nan") for key in COUNTS})
    assert fresh["sweep_match_requests"] == 40.0  # no series yet at the start: zero
    assert fresh["sweep_mean_queue_wait_ms"] == pytest.approx(50.0)  # 2.0 s over 40 waits
    before = {**before, "match_queue_waits": 20.0, "match_queue_wait_sum_s": 1.8}
    assert side_during("http://x", before)["sweep_mean_queue_wait_ms"] == pytest.approx(10.0)
