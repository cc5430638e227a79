"""What one overload refusal costs a server process: FastAPI's route vs the admission gate.

Why: offered twice their capacity, 4 HTTP front ends spent so much CPU refusing requests that
refusals came seconds late (BENCHMARKS.md, serving). ``mmscale.serve.gate.AdmissionGate`` answers
the same 503 as raw ASGI messages before FastAPI routes the request. This script calls the real
app in-process (ASGI, no sockets) with a server whose queue is always full, once built without
the gate (the handler refuses) and once with it, in the same run, and prints microseconds per
refusal and the ratio. The HTTP parse in uvicorn, the same for both, is not included.

    PYTHONPATH=src python3 benchmarks/refusal_cost.py --out runs/refusal_cost
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

BODY = b"\xff\xd8\xff" + b"\0" * 40_000  # a 40 kB request body the refusal never reads


def full_server(token: str | None = None):
    """An ``app.Server`` whose queue is always full (no predictor, no runner)."""
    from mmscale.serve.app import Server
    from mmscale.serve.batcher import QueueFull
    from mmscale.serve.config import ServeConfig
    from mmscale.serve.metrics import ServerMetrics

    class FullServer(Server):
        def __init__(self, cfg):
            self.cfg, self.predictor, self.runner = cfg, None, None
            self.metrics, self.ready = ServerMetrics(), True
            self.expected_auth = f"Bearer {cfg.token}".encode() if cfg.token else None

        def admit(self):
            raise QueueFull("queue full (always, in this benchmark)")

    return FullServer(ServeConfig(token=token))


def match_scope(headers: list[tuple[bytes, bytes]] = ()) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/v1/match", "raw_path": b"/v1/match", "query_string": b"caption=a+dog",
            "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"image/jpeg"),
                        (b"content-length", str(len(BODY)).encode()), *headers]}


async def call(app, scope: dict) -> tuple[int, dict, bytes]:
    """One request through the ASGI app: (status, headers, body)."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(dict(scope), receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def us_per_refusal(app, n: int) -> float:
    async def run() -> float:
        for _ in range(min(n, 200)):  # warm-up: routes compiled, metric children made
            await call(app, match_scope())
        start = time.perf_counter()
        for _ in range(n):
            await call(app, match_scope())
        return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(run())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="refusals timed per variant")
    parser.add_argument("--out", default="runs/refusal_cost")
    args = parser.parse_args(argv)
    from mmscale.bench.environment import fingerprint
    from mmscale.serve.app import create_app

    rows = []
    for name, gate in (("FastAPI route (no gate)", False), ("admission gate", True)):
        server = full_server()
        app = create_app(None, server.cfg, server=server, admission_gate=gate)
        status, _, _ = asyncio.run(call(app, match_scope()))
        rows.append({"variant": name, "gate": gate, "status": status, "us_per_refusal": us_per_refusal(app, args.n)})
    ratio = rows[0]["us_per_refusal"] / rows[1]["us_per_refusal"]
    for row in rows:
        print(f"{row['variant']:26s} {row['us_per_refusal']:8.1f} us per refusal (status {row['status']})")
    print(f"gate: {ratio:.1f}x fewer microseconds per refusal than the route, same run")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    doc = {"rows": rows, "route_over_gate": ratio, "n": args.n, "environment": fingerprint()}
    (Path(args.out) / "refusal_cost.json").write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
