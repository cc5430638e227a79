"""Coordinated omission: a server that stalls once shows the stall in open-loop percentiles,
while a closed-loop run over the same stall hides it (one slow request among hundreds)."""

import asyncio
import threading
import time

import pytest

from mmscale.bench.load.runner import LoadConfig, LoadRunner
from mmscale.bench.load.client import Payload
from mmscale.bench.load.pool import ClientPool

STALL_S = 0.6
STALL_AFTER = 20  # the 20th request after a reset starts the stall


class StallingServer:
    """aiohttp on a free loopback port: answers at once, except that every request arriving in
    the STALL_S after the STALL_AFTER-th one waits until the stall ends."""

    def __init__(self):
        self.count, self.stall_until = 0, 0.0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        # a busy machine may take many seconds to import aiohttp and bind: wait, then fail clearly
        assert self.ready.wait(120), "the stalling server did not start within 120 s"

    def reset(self):
        self.count, self.stall_until = 0, 0.0

    async def handle(self, request):
        from aiohttp import web

        await request.read()
        self.count += 1
        if self.count == STALL_AFTER:
            self.stall_until = time.monotonic() + STALL_S
        wait_s = self.stall_until - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        return web.json_response({"itm_prob": [0.5]})

    def run(self):
        from aiohttp import web

        async def main():
            app = web.Application()
            app.router.add_post("/v1/match", self.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            self.loop = asyncio.get_running_loop()
            self.ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())


@pytest.fixture(scope="module")
def stalling():
    return StallingServer()


def test_open_loop_shows_the_stall_closed_loop_hides_it(stalling):
    cfg = LoadConfig(url=f"http://127.0.0.1:{stalling.port}", window_s=2.5, max_windows=1, stable_windows=1,
                     processes=1, slo="p99=100ms", timeout_s=10)
    payloads = [Payload("/v1/match?caption=a", b"x" * 100, "image/jpeg")]
    with ClientPool(1, payloads) as pool:
        runner = LoadRunner(cfg, pool, "stall")
        stalling.reset()
        closed, closed_ms = runner.level("closed", 1)
        stalling.reset()
        opened, opened_ms = runner.level("open", 40)
    # both runs met the same 0.6 s stall
    assert closed.max_ms >= 0.9 * STALL_S * 1000 and opened.max_ms >= 0.9 * STALL_S * 1000
    # counts, not speeds: how many requests a run charges with the stall does not depend on how
    # fast a busy machine lets the client go
    def charged(latencies_ms):
        return sum(1 for ms in latencies_ms if ms >= 0.5 * STALL_S * 1000)

    # closed loop: the one user waited once, then carried on (a busy machine may add one slow send)
    assert 1 <= charged(closed_ms) <= 2, closed
    # open loop: every request due in the stall's first half waited at least half of it (~12 due)
    assert charged(opened_ms) >= 8, opened
    assert closed.p99_ms < opened.p99_ms, (closed, opened)  # many fast answers bury the one
    # open loop: every request due during the stall (~24 of ~100) is charged from its scheduled time
    assert opened.p90_ms > 100.0, opened
    assert opened.p99_ms > 0.5 * STALL_S * 1000, opened
    assert opened.goodput_per_s < opened.throughput_per_s  # the stalled ones missed the SLO
