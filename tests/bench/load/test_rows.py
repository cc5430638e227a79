"""Load rows from constructed windows (a fake client pool): throughput over the time actually
measured, an open-loop rate the client did not reach flagged, and rows that write strict JSON."""

import json

import pytest

from mmscale.bench.load.runner import LoadConfig, LoadResult, LoadRunner, make_headline
from mmscale.strict_json import dumps


class ConstructedPool:
    """Stands in for ``ClientPool``: each job's records come from ``make(job)`` (times from its start)."""

    def __init__(self, processes, make):
        self.processes, self.make = processes, make

    def __len__(self):
        return self.processes

    def run(self, jobs):
        results = []
        for job in jobs:
            rows, offered_s, *late = self.make(job)  # late: this process began that many seconds late
            began_s = job.start_at + (late[0] if late else 0.0)
            scheduled, sent, done, status = (list(c) for c in zip(*rows)) if rows else ([], [], [], [])
            results.append({"scheduled_s": [began_s + t for t in scheduled],
                            "sent_s": [began_s + t for t in sent], "done_s": [began_s + t for t in done],
                            "status": status, "cpu_s": 0.1, "wall_s": 1.0, "began_s": began_s,
                            "offered_s": offered_s})
        return results


def runner(make, processes=2, **cfg):
    base = dict(url="http://127.0.0.1:9", window_s=8.0, max_windows=3, stable_windows=3, processes=processes,
                max_requests=20_000)
    return LoadRunner(LoadConfig(**{**base, **cfg}), ConstructedPool(processes, make), "ours")


def test_a_budget_spent_early_reads_the_rate_it_was_served_at_not_budget_over_window():
    """The reported case: 3 x 8 s windows of 20,000 requests each, served at 3,700 req/s with a
    69 ms latency, used to read exactly 2,500.0 req/s (60,000 / 24 s)."""
    per_process_rate, latency_s = 1850.0, 0.069

    def make(job):  # each process: its share of the budget at 1,850 req/s, then nothing
        sends = [k / per_process_rate for k in range(job.max_requests)]
        return [(t, t, t + latency_s, 200) for t in sends], sends[-1]

    run = runner(make)
    row, _ = run.level("closed", 256)
    offered_s = (10_000 - 1) / per_process_rate
    assert row.requests == row.ok == 60_000
    assert row.measured_s == pytest.approx(3 * (offered_s + latency_s))
    assert row.throughput_per_s == pytest.approx(60_000 / row.measured_s)
    assert 3_600 < row.throughput_per_s < 3_700  # not 2,500
    assert row.offered_rate_reached is None  # closed loop offers no rate
    assert any("request budget (--max-requests 20000) ran out 5.40 s into each 8 s window; figures are over the "
               "16.42 s measured in 3 windows" in w for w in run.warnings), run.warnings


def test_a_window_that_ran_its_full_length_is_measured_to_its_last_answer():
    def make(job):  # 1 user per process at 100 req/s for the whole 2 s, the last answer 10 ms late
        return [(k / 100, k / 100, k / 100 + 0.01, 200) for k in range(200)], job.duration_s

    run = runner(make, window_s=2.0, max_windows=1, stable_windows=1)
    row, _ = run.level("closed", 2)
    assert row.measured_s == pytest.approx(2.0)
    assert row.throughput_per_s == pytest.approx(400 / 2.0)
    assert not any("request budget" in w for w in run.warnings)


def test_a_closed_loop_that_began_late_is_measured_from_when_it_began():
    def make(job):  # the process began 0.5 s into its 2 s window: 1.5 s of one user at 100 req/s
        return [(k / 100, k / 100, k / 100 + 0.01, 200) for k in range(150)], 1.5, 0.5

    run = runner(make, processes=1, window_s=2.0, max_windows=1, stable_windows=1)
    row, _ = run.level("closed", 1)
    assert row.measured_s == pytest.approx(1.5)
    assert row.throughput_per_s == pytest.approx(100.0)  # not 150 / 2 s


def test_an_open_loop_rate_the_client_did_not_reach_is_flagged_and_never_the_headline():
    def late(job):  # due at the target rate over 1 s, but sent over 2 s: the client fell behind
        n = int(job.rate_per_s * job.duration_s)
        return [(k / job.rate_per_s, 2 * k / job.rate_per_s, 2 * k / job.rate_per_s + 0.001, 200)
                for k in range(n)], job.duration_s

    def on_time(job):
        n = int(job.rate_per_s * job.duration_s)
        return [(k / job.rate_per_s, k / job.rate_per_s, k / job.rate_per_s + 0.001, 200) for k in range(n)], \
            job.duration_s

    slo = "p99=10s"  # the lateness alone must not be what excludes the row
    behind = runner(late, window_s=1.0, max_windows=1, stable_windows=1, slo=slo)
    missed, _ = behind.level("open", 1000)
    assert missed.offered_rate_reached is False
    assert missed.achieved_rate_per_s == pytest.approx(1000 / 1.996)  # 2 x 500 sent up to 1.996 s
    assert any("offered rate not reached: the client sent 501 of 1000 req/s and sends ran p99 988.0 ms behind "
               "schedule" in w for w in behind.warnings), behind.warnings
    kept = runner(on_time, window_s=1.0, max_windows=1, stable_windows=1, slo=slo)
    reached, _ = kept.level("open", 200)
    assert reached.offered_rate_reached is True
    assert not any("offered rate" in w for w in kept.warnings)
    headline = make_headline([missed, reached], None, kept.slo)
    assert headline.startswith("best level within p99<=10000ms: 200 req/s:"), headline  # not the 1000 row


def test_a_level_with_no_answered_request_writes_strict_json_and_says_why():
    def refused(job):
        return [(k / 100, k / 100, k / 100 + 0.002, 503) for k in range(50)], job.duration_s

    run = runner(refused, window_s=1.0, max_windows=2, stable_windows=2)
    row, _ = run.level("closed", 2)
    assert row.ok == 0 and row.throughput_per_s == 0.0 and row.p99_ms != row.p99_ms  # nan in the row
    text = dumps(LoadResult([row], None, run.warnings, "").as_dict())

    def reject(constant):
        raise AssertionError(f"{constant} in JSON")

    doc = json.loads(text, parse_constant=reject)
    (written,) = doc["rows"]
    assert written["p50_ms"] is None and written["p99_ms"] is None and written["mean_ms"] is None
    assert written["spread"] is None  # infinite: the windows had no p99 to compare
    assert written["refused_p99_ms"] == pytest.approx(2.0)
    assert any("no request was answered 2xx ({'503': 200})" in w for w in doc["warnings"]), doc["warnings"]
