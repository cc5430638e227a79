"""One load-generator process: sends real HTTP requests with aiohttp and records every one.

Runs in a child process (several at once, so the client is never the bottleneck); imports
neither torch nor the model. Clocks are ``time.monotonic`` (CLOCK_MONOTONIC, shared by all
processes on the host), so the parent can merge records from every process on one time axis.

- closed loop: ``concurrency`` users, each sends its next request when the last one answered.
  Latency runs from the actual send.
- open loop: Poisson arrivals at ``rate_per_s``. Each request's latency runs from its
  *scheduled* send time, so a stalled server (or a client that fell behind) is charged for the
  time requests could not even be sent: no coordinated omission (wrk2, MLPerf LoadGen).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

STATUS_TIMEOUT = -1  # request did not finish within timeout_s
STATUS_CONN_ERROR = 0  # connection refused / reset before a status line

PAYLOADS: list = []  # set once per process by ``init_worker``


@dataclass
class Payload:
    """One request: path with query (``/v1/match?caption=...``), body and content type."""

    path: str
    body: bytes
    content_type: str


@dataclass
class WorkerJob:
    url: str
    mode: str  # "closed" or "open"
    concurrency: int = 1
    rate_per_s: float = 0.0
    duration_s: float = 5.0
    max_requests: int = 10_000
    start_at: float = 0.0  # monotonic time at which every process starts sending
    seed: int = 0
    timeout_s: float = 30.0
    token: str | None = None
    max_connections: int = 1024  # open loop: sockets this process may hold at once


def init_worker(payloads: list[Payload]) -> None:
    PAYLOADS[:] = payloads
    # imported before the process reports ready: on a busy machine the first import can take longer
    # than a window's lead time, and the first window would start late
    import aiohttp  # noqa: F401

    try:
        import uvloop  # noqa: F401
    except ImportError:
        pass


def run_job(job: WorkerJob) -> dict:
    """Run one window; returns column lists (scheduled_s, sent_s, done_s, status), CPU use, and
    when requests were offered: from ``began_s`` (monotonic) for ``offered_s`` seconds. A closed
    loop begins when its users start (``start_at``, or later if this process was late) and offers
    until the window ends or the request budget runs out; an open loop's schedule begins at
    ``start_at`` however late the process is (the lateness is charged to its requests)."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:  # uvloop (when installed) roughly halves the client's CPU per request
        import uvloop

        records, began_s, offered_s = uvloop.run(main(job))
    except ImportError:
        records, began_s, offered_s = asyncio.run(main(job))
    wall_s = max(time.monotonic() - max(wall0, job.start_at), 1e-9)
    scheduled, sent, done, status = (list(c) for c in zip(*records)) if records else ([], [], [], [])
    return {"scheduled_s": scheduled, "sent_s": sent, "done_s": done, "status": status,
            "cpu_s": time.process_time() - cpu0, "wall_s": wall_s, "began_s": began_s, "offered_s": offered_s}


async def main(job: WorkerJob) -> tuple[list[tuple[float, float, float, int]], float, float]:
    import aiohttp  # the serve extra: the CLI imports this module (through bench.load) without it

    limit = job.concurrency if job.mode == "closed" else job.max_connections
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    headers = {"Authorization": f"Bearer {job.token}"} if job.token else {}
    timeout = aiohttp.ClientTimeout(total=job.timeout_s)
    async with aiohttp.ClientSession(job.url, connector=connector, headers=headers, timeout=timeout,
                                     skip_auto_headers=("User-Agent",)) as session:
        if job.mode == "closed":
            return await closed_loop(session, job)
        return await open_loop(session, job)


async def send(session, payload: Payload) -> int:
    import aiohttp  # the serve extra, as in main

    try:
        async with session.post(payload.path, data=payload.body,
                                headers={"Content-Type": payload.content_type}) as resp:
            await resp.read()
            return resp.status
    except asyncio.TimeoutError:
        return STATUS_TIMEOUT
    except (aiohttp.ClientError, OSError):
        return STATUS_CONN_ERROR


async def sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def closed_loop(session, job: WorkerJob) -> tuple[list, float, float]:
    records: list = []
    end_s = job.start_at + job.duration_s
    budget = [job.max_requests]
    offered_until = [end_s]

    async def user(index: int) -> None:
        k = index * 7919 + job.seed
        while budget[0] > 0 and time.monotonic() < end_s:
            budget[0] -= 1
            payload = PAYLOADS[k % len(PAYLOADS)]
            k += 1
            sent = time.monotonic()
            if budget[0] == 0:  # the last request of the budget: no more are offered after it
                offered_until[0] = sent
            status = await send(session, payload)
            records.append((sent, sent, time.monotonic(), status))

    await sleep_until(job.start_at)
    began_s = min(time.monotonic(), end_s)
    await asyncio.gather(*(user(i) for i in range(job.concurrency)))
    return records, began_s, max(offered_until[0] - began_s, 0.0)


def poisson_schedule(rate_per_s: float, duration_s: float, max_requests: int, seed: int) -> list[float]:
    """Send offsets (s from start) of a Poisson process: exponential gaps of mean 1/rate."""
    rng = random.Random(seed)
    offsets, t = [], 0.0
    while len(offsets) < max_requests:
        t += rng.expovariate(rate_per_s)
        if t >= duration_s:
            break
        offsets.append(t)
    return offsets


def offered_span_s(schedule: list[float], duration_s: float, max_requests: int) -> float:
    """Time a schedule offers requests over: the window, or up to its last send when the request
    budget ended it early (the rate held until then; the time after it offered nothing)."""
    if schedule and len(schedule) >= max_requests:
        return schedule[-1]
    return duration_s


async def open_loop(session, job: WorkerJob) -> tuple[list, float, float]:
    records: list = []

    async def one(scheduled: float, payload: Payload) -> None:
        sent = time.monotonic()
        status = await send(session, payload)
        records.append((scheduled, sent, time.monotonic(), status))

    tasks = []
    schedule = poisson_schedule(job.rate_per_s, job.duration_s, job.max_requests, job.seed)
    for k, offset in enumerate(schedule):
        scheduled = job.start_at + offset
        await sleep_until(scheduled)  # if we wake late, the lateness is charged to the request
        tasks.append(asyncio.create_task(one(scheduled, PAYLOADS[(k + job.seed) % len(PAYLOADS)])))
    await asyncio.gather(*tasks)
    return records, job.start_at, offered_span_s(schedule, job.duration_s, job.max_requests)
