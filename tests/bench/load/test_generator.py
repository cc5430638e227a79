"""A short ``bench load --spawn`` run against the real tiny-model server reports sane figures."""

import base64
import http.server
import json
import math
import threading

import pytest

from mmscale.errors import DataError

from mmscale.bench.load.payload import build_payloads
from mmscale.bench.load.pool import split_evenly, window_jobs
from mmscale.bench.load.client import poisson_schedule
from mmscale.cli import main


def test_short_run_against_the_tiny_model_server_reports_sane_percentiles(tmp_path):
    """Real server (tiny model, CPU) on a free loopback port; ``--spawn`` is covered by the
    ``mmscale bench serve`` smoke test."""
    import torch

    from mmscale.serve.config import ServeConfig
    from mmscale.serve.run import build_predictor
    from tests.serve.serve_fakes import live_server

    torch.set_num_threads(1)
    # the generator is under test, not admission: an SLO no busy machine reaches, so nothing is refused
    cfg = ServeConfig(device="cpu", max_wait_ms=5, slo_ms=60_000)
    out = tmp_path / "load.json"
    with live_server(build_predictor(cfg, preset="tiny"), cfg) as (url, _):
        code = main(["bench", "load", "--url", url, "--label", "batched", "--concurrency", "1,4", "--rates", "8",
                     "--window-s", "1", "--max-windows", "1", "--warmup-s", "0.2", "--processes", "1",
                     "--captions", "2", "--slo", "p99=2s", "--json", "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["mode"], r["concurrency"], r["target_rate_per_s"]) for r in rows] == [
        ("closed", 1, 0.0), ("closed", 4, 0.0), ("open", 0, 8.0)]
    for r in rows:
        assert r["ok"] == r["requests"] > 0 and r["errors_by_status"] == {}
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"] < 5000
        assert r["throughput_per_s"] > 0 and r["goodput_per_s"] <= r["throughput_per_s"] + 1e-9
        assert r["windows"] >= 1 and r["client_cpu_max_pct"] >= 0
    closed1, closed4, opened = rows
    # one user waits for each answer: throughput ~ 1 / mean latency (Little's law, within overheads)
    assert math.isclose(closed1["throughput_per_s"], 1000.0 / closed1["mean_ms"], rel_tol=0.35)
    assert closed4["mean_ms"] >= closed1["p50_ms"] * 0.5
    assert 3 <= opened["achieved_rate_per_s"] <= 16  # Poisson at 8/s over a 1 s window
    assert result["headline"]


def test_payloads_from_a_dataset_directory(tmp_path):
    from PIL import Image

    (tmp_path / "img").mkdir()
    lines = []
    for k in range(3):
        Image.new("RGB", (40, 30), (k * 60, 10, 10)).save(tmp_path / "img" / f"{k}.jpg")
        lines.append(json.dumps({"image": f"img/{k}.jpg", "caption": f"a red square number {k}"}))
    (tmp_path / "val.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    payloads = build_payloads("match", n=5, captions_per_request=2, dataset=str(tmp_path))
    assert len(payloads) == 5 and payloads[0].body[:3] == b"\xff\xd8\xff"
    assert "caption=a+red+square+number+0" in payloads[0].path and payloads[0].path.count("caption=") == 2
    text = build_payloads("embed_text", n=2, captions_per_request=3)
    assert json.loads(text[0].body)["texts"] and text[0].content_type == "application/json"
    as_json = build_payloads("match", n=5, captions_per_request=2, dataset=str(tmp_path), form="json")
    body = json.loads(as_json[0].body)
    assert as_json[0].path == "/v1/match" and as_json[0].content_type == "application/json"
    assert base64.b64decode(body["image_b64"]) == payloads[0].body and len(body["captions"]) == 2
    with pytest.raises(DataError, match="payload_format"):
        build_payloads("match", n=1, form="xml")


def test_load_is_split_over_processes():
    assert split_evenly(10, 4) == [3, 3, 2, 2] and split_evenly(2, 4) == [1, 1]
    jobs = window_jobs("http://x", "closed", 10, 4, 1.0, 100, 5.0, None, seed=0)
    assert [j.concurrency for j in jobs] == [3, 3, 2, 2] and sum(j.max_requests for j in jobs) == 100
    jobs = window_jobs("http://x", "open", 100.0, 4, 1.0, 100, 5.0, None, seed=0)
    assert [j.rate_per_s for j in jobs] == [25.0] * 4 and len({j.seed for j in jobs}) == 4


def test_poisson_schedule_has_the_target_rate_and_exponential_gaps():
    offsets = poisson_schedule(200.0, 50.0, 1_000_000, seed=1)
    assert abs(len(offsets) - 10_000) < 4 * 100  # mean 10,000, sd 100
    gaps = [b - a for a, b in zip(offsets, offsets[1:])]
    mean = sum(gaps) / len(gaps)
    var = sum((g - mean) ** 2 for g in gaps) / len(gaps)
    assert abs(mean - 0.005) < 0.0002 and abs(var ** 0.5 / mean - 1.0) < 0.05  # exponential: cv = 1
    assert len(poisson_schedule(200.0, 50.0, 7, seed=1)) == 7  # request budget caps it


def test_a_request_budget_spent_early_is_measured_over_the_time_it_lasted(tmp_path):
    """Real server on a free port, 20 ms per batch: a budget of 12 requests lasts about a quarter
    of a second of the 30 s window (the run ends when it is spent); throughput is over that time,
    not 12 / 30 s."""
    from mmscale.serve.config import ServeConfig
    from tests.serve.serve_fakes import FakePredictor, live_server

    cfg = ServeConfig(device="cpu", max_wait_ms=1)
    out = tmp_path / "load.json"
    with live_server(FakePredictor(delay_s=0.02), cfg) as (url, _):
        code = main(["bench", "load", "--url", url, "--concurrency", "1", "--window-s", "30", "--max-windows", "1",
                     "--max-requests", "12", "--warmup-s", "0", "--processes", "1", "--captions", "1",
                     "--slo", "p99=10s", "--json", "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert row["ok"] == row["requests"] == 12
    assert row["measured_s"] < 30.0  # the budget ran out before the window did
    assert row["throughput_per_s"] == pytest.approx(12 / row["measured_s"])
    # one user, one request at a time: the time measured holds every latency, back to back
    assert row["throughput_per_s"] <= 1000.0 / row["mean_ms"] * 1.001
    assert row["throughput_per_s"] > 12 / 30.0, row
    assert any("request budget (--max-requests 12) ran out" in w for w in doc["warnings"]), doc["warnings"]


class RefusingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request 503: a level where nothing completes."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"error":"overloaded"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_level_where_nothing_completes_writes_json_a_strict_parser_accepts(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "load.json"
    try:
        code = main(["bench", "load", "--url", f"http://127.0.0.1:{server.server_port}", "--concurrency", "2",
                     "--rates", "20", "--window-s", "0.5", "--max-windows", "2", "--warmup-s", "0",
                     "--processes", "1", "--captions", "1", "--out", str(out)])
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0

    def reject(constant):
        raise AssertionError(f"{constant} written into the JSON")

    text = out.read_text()
    doc = json.loads(text, parse_constant=reject)
    for row in doc["rows"]:
        assert row["ok"] == 0 and row["requests"] > 0 and set(row["errors_by_status"]) == {"503"}
        assert row["throughput_per_s"] == 0.0
        assert row["p50_ms"] is None and row["p99_ms"] is None and row["max_ms"] is None
        assert row["refused_p99_ms"] > 0
    assert sum("no request was answered 2xx" in w for w in doc["warnings"]) == 2
    assert doc["headline"].startswith("no level met")
