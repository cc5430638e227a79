"""Our load generator against ``wrk``: wrk's output parsed, and a CPU run of both on one server."""

import shutil

import pytest

from mmscale.bench.serving.crosscheck import crosscheck, format_crosscheck, parse_duration_ms, parse_wrk

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8000/v1/match
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.50ms    3.10ms   1.02s    80.00%
    Req/Sec    320.00     20.00   400.00     70.00%
  Latency Distribution
     50%   11.80ms
     75%   13.00ms
     90%   15.20ms
     99%  950.00us
  640 requests in 2.00s, 100.00KB read
  Non-2xx or 3xx responses: 3
Requests/sec:    319.50
Transfer/sec:     50.00KB
"""


def test_wrk_output_is_read_in_milliseconds():
    got = parse_wrk(WRK_OUTPUT)
    assert got["throughput_per_s"] == 319.5 and got["requests"] == 640 and got["non_2xx"] == 3
    assert (got["mean_ms"], got["max_ms"], got["p50_ms"], got["p90_ms"]) == (12.5, 1020.0, 11.8, 15.2)
    assert got["p99_ms"] == pytest.approx(0.95) and got["socket_errors"] == 0
    assert parse_duration_ms("2m") == 120_000.0
    with pytest.raises(ValueError, match="unexpected wrk output"):
        parse_wrk("wrk: connection refused")


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_crosscheck_cpu_smoke():
    serve = ["--device", "cpu", "--max-batch", "256", "--max-queue", "4096", "--preset", "tiny", "--cpu-threads", "1"]
    result = crosscheck(serve, concurrency=4, duration_s=2.0, captions=1, processes=1, wrk_threads=1)
    ours, wrk = result["ours"], result["wrk"]
    assert ours["throughput_per_s"] > 0 and wrk["throughput_per_s"] > 0
    assert wrk["p50_ms"] > 0 and result["throughput_ratio"] == pytest.approx(
        ours["throughput_per_s"] / wrk["throughput_per_s"])
    assert "ours / wrk: throughput" in format_crosscheck(result)
