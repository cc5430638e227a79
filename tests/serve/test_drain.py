"""SIGTERM drains: requests in flight when the signal arrives still get their answers, then the
process exits 0 and stops accepting."""

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import jpeg
from tests.serve.serve_fakes import listening_url

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_drains_in_flight_requests_then_exits():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "tests.serve.slow_server", "0.4"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = listening_url(proc, [])
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(client.post, f"{url}/v1/match", content=jpeg(),
                                       params={"caption": ["x"]}, headers={"content-type": "image/jpeg"})
                           for _ in range(4)]  # 2 batches of 2 at 0.4 s each: ~0.8 s of work
                time.sleep(0.2)
                proc.send_signal(signal.SIGTERM)
                statuses = [f.result().status_code for f in futures]
        assert statuses == [200] * 4
        assert proc.wait(timeout=20) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
