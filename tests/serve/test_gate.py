"""The admission gate answers overload exactly as the handler would, and nothing else."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from mmscale.serve.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from refusal_cost import call, full_server, match_scope  # noqa: E402


def refuse(gate: bool, headers=(), token=None, forbid_handler=False):
    server = full_server(token)
    if forbid_handler:
        async def unreachable(*args, **kwargs):
            raise AssertionError("the request reached the route handler")
        server.handle = unreachable
    app = create_app(None, server.cfg, server=server, admission_gate=gate)
    return asyncio.run(call(app, match_scope(list(headers)))), server


def counter(server, name: str, **labels) -> float:
    return server.metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_gate_refuses_before_the_handler_with_the_handlers_answer():
    (status, headers, body), server = refuse(gate=True, forbid_handler=True)
    (h_status, h_headers, h_body), _ = refuse(gate=False)
    assert status == h_status == 503
    assert json.loads(body) == json.loads(h_body)
    assert json.loads(body)["error"]["code"] == "overloaded"
    for name in ("retry-after", "content-type", "content-length"):
        assert headers[name] == h_headers[name], name
    assert counter(server, "mmscale_rejected_total", reason="queue_full") == 1
    assert counter(server, "mmscale_requests_total", endpoint="/v1/match", status="503") == 1
    assert counter(server, "mmscale_request_latency_seconds_count", endpoint="/v1/match") == 1


@pytest.mark.parametrize("given, expected", [(b"Bearer wrong", 401), (b"Bearer s3cret", 503)])
def test_with_a_token_only_an_authorized_request_is_refused_for_load(given, expected):
    (status, _, _), server = refuse(gate=True, headers=[(b"authorization", given)], token="s3cret")
    assert status == expected  # a wrong token is the handler's 401, as without the gate
    assert counter(server, "mmscale_rejected_total", reason="queue_full") == (1 if expected == 503 else 0)


def test_other_paths_pass_through_the_gate():
    server = full_server()
    app = create_app(None, server.cfg, server=server)
    scope = {**match_scope(), "method": "GET", "path": "/healthz", "raw_path": b"/healthz", "query_string": b""}
    status, _, body = asyncio.run(call(app, scope))
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.mark.parametrize("gate", [True, False])
def test_an_admitted_request_is_checked_for_admission_once(gate):
    server = full_server()
    calls = []
    server.admit = lambda: calls.append(1)  # admits; the handler then refuses the fake image body (4xx)
    app = create_app(None, server.cfg, server=server, admission_gate=gate)
    status, _, _ = asyncio.run(call(app, match_scope()))
    assert calls == [1] and 400 <= status < 500
