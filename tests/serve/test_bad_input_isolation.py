"""Every class of bad input, sent to the real server at the same time as good requests: each bad
one gets its documented status and error code, each good one its answer, and nothing is a 5xx."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import socket
import time

import httpx
import pytest

from mmscale.serve import app as app_module
from mmscale.serve.config import ServeConfig
from tests.serve.conftest import jpeg
from tests.serve.serve_fakes import live_server

BODY_TIMEOUT_S = 1.0  # the server's read timeout in this test (5 s by default)


def raw(url: str, head: bytes, body: bytes, then: str) -> tuple[int, str]:
    """Send a request by hand on a socket. ``then``: ``close`` (disconnect mid-upload, no answer
    expected) or ``wait`` (stall and read whatever the server answers)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_S + 10) as sock:
        sock.sendall(head + body)
        if then == "close":
            return 0, ""
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"]


def upload_head(path: str, length: int, ctype: str = "image/jpeg") -> bytes:
    return (f"POST {path}?caption=a+cat HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def bad_requests(url: str) -> dict:
    """name -> (callable returning (status, code), expected status, expected code)."""
    def post(path, body, ctype="application/json", params=None):
        def send():
            resp = httpx.post(f"{url}{path}", content=body, params=params, headers={"content-type": ctype},
                              timeout=30)
            return resp.status_code, resp.json()["error"]["code"]
        return send

    def method(verb, path):
        def send():
            resp = httpx.request(verb, f"{url}{path}", timeout=30)
            return resp.status_code, resp.json()["error"]["code"]
        return send

    truncated = jpeg(seed=3)[:400]  # the header parses; the decode fails inside the batch
    return {
        "lone surrogate text": (post("/v1/embed/text", b'{"texts": ["a cat", "\\ud800"]}'), 400, "bad_request"),
        "lone surrogate caption": (post("/v1/match", json.dumps(
            {"image_b64": __import__("base64").b64encode(jpeg()).decode(), "captions": ["\ud800"]}).encode()),
            400, "bad_request"),
        "deep nesting": (post("/v1/embed/text", b"[" * 100_000), 400, "bad_request"),
        "huge float": (post("/v1/embed/text", b'{"texts": [1e999999]}'), 400, "bad_request"),
        "huge integer": (post("/v1/embed/text", b'{"texts": ["a"], "n": ' + b"9" * 5000 + b"}"), 400, "bad_request"),
        "huge content-length": (lambda: raw(url, upload_head("/v1/match", 10**15), b"", "wait"), 413,
                                "limit_exceeded"),
        "text/plain text": (post("/v1/embed/text", b'{"texts": ["a"]}', "text/plain"), 415, "unsupported_media_type"),
        "text/plain image": (post("/v1/match", jpeg(), "text/plain", {"caption": "a"}), 415,
                             "unsupported_media_type"),
        "blank caption": (post("/v1/match", jpeg(), "image/jpeg", {"caption": " \u0085"}), 400, "bad_request"),
        "truncated image": (post("/v1/match", truncated, "image/jpeg", {"caption": "a"}), 400, "bad_image"),
        "not found": (method("GET", "/v1/nothing"), 404, "not_found"),
        "wrong method": (method("GET", "/v1/match"), 405, "method_not_allowed"),
        "stalled body": (lambda: raw(url, upload_head("/v1/match", 5000), b"\xff\xd8" * 10, "wait"), 408,
                         "request_timeout"),
        "disconnect mid-upload": (lambda: raw(url, upload_head("/v1/match", 50_000), b"\xff\xd8" * 10, "close"),
                                  0, ""),
    }


def good_requests(url: str) -> list:
    """Callables returning (status, body) for requests that must succeed."""
    def match(k):
        return lambda: (lambda r: (r.status_code, r.json()))(httpx.post(
            f"{url}/v1/match", content=jpeg(seed=k), params={"caption": [f"caption {k}", "a cat"]},
            headers={"content-type": "image/jpeg"}, timeout=30))

    def texts(k):
        return lambda: (lambda r: (r.status_code, r.json()))(httpx.post(
            f"{url}/v1/embed/text", json={"texts": [f"text {k}"]}, timeout=30))

    return [match(k) for k in range(8)] + [texts(k) for k in range(8)]


@pytest.fixture
def server(tiny_predictor, monkeypatch):
    monkeypatch.setattr(app_module, "BODY_TIMEOUT_S", BODY_TIMEOUT_S)
    # batches wide and slow enough to hold good and bad requests together; admission is not tested here
    cfg = ServeConfig(device="cpu", max_batch=16, max_wait_ms=100, slo_ms=0)
    with live_server(tiny_predictor, cfg) as (url, _):
        yield url


def test_each_bad_request_fails_alone_with_its_documented_status(server, caplog):
    url = server
    caplog.set_level(logging.INFO, logger="mmscale.serve")
    bad = bad_requests(url)
    good = good_requests(url)
    with concurrent.futures.ThreadPoolExecutor(len(bad) + len(good)) as pool:
        bad_futures = {name: pool.submit(send) for name, (send, _, _) in bad.items()}
        good_futures = [pool.submit(send) for send in good]
        bad_got = {name: f.result(60) for name, f in bad_futures.items()}
        good_got = [f.result(60) for f in good_futures]
    for name, (_, status, code) in bad.items():
        assert bad_got[name] == (status, code), name
    for status, body in good_got:
        assert status == 200, body
    assert all(len(body.get("itm_prob", [0, 0])) == 2 for _, body in good_got)
    deadline = time.monotonic() + 5
    text = ""
    while 'status="499"' not in text and time.monotonic() < deadline:  # the disconnect is seen when it is read
        text = httpx.get(f"{url}/metrics").text
        time.sleep(0.05)
    assert 'mmscale_requests_total{endpoint="/v1/match",status="499"} 1.0' in text
    assert 'status="5' not in text  # no 5xx at all
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert any("disconnected" in r.getMessage() for r in caplog.records)
