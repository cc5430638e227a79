"""``--frontends N``: N HTTP processes in front of one model process, tested as real processes on a
free loopback port: scores equal the predictor's alone, batches form across front ends, the queue
bound is global, the token holds, metrics add up over front ends, SIGTERM drains, and a dead
process is a loud failure rather than a silent hang."""

import concurrent.futures
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from mmscale.serve.batcher import QueueFull
from mmscale.serve.frontend import RemoteRunner
from mmscale.serve.items import Item
from tests.serve.conftest import jpeg
from tests.serve.serve_fakes import server_process


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def on_fresh_connection(url: str, request):
    """(pid of the front end that served it, response), on a connection of its own."""
    with httpx.Client(timeout=60) as client:
        pid = client.get(f"{url}/healthz").json()["pid"]
        return pid, request(client)


def post_match(client, url, image, captions, headers=None):
    return client.post(f"{url}/v1/match", content=image, params={"caption": captions},
                       headers={"content-type": "image/jpeg", **(headers or {})})


@pytest.fixture(scope="module")
def tiny_frontends():
    config = dict(frontends=2, max_batch=8, max_wait_ms=50, max_captions=4, slo_ms=0)  # scores, not admission
    with server_process(config, "tiny") as (proc, url):
        yield proc, url


def test_scores_equal_unbatched_batches_span_frontends_and_metrics_add_up(tiny_frontends, tiny_predictor):
    proc, url = tiny_frontends
    jobs = [(jpeg(80, 60, seed=k), [f"caption number {j}" for j in range(1 + k % 3)]) for k in range(20)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        served = list(pool.map(lambda job: on_fresh_connection(url, lambda c: post_match(c, url, *job)), jobs))
    for (image, captions), (_, resp) in zip(jobs, served):
        assert resp.status_code == 200, resp.text
        (alone,) = tiny_predictor.predict("match", [Item("match", image, captions)])
        assert resp.json()["itm_prob"] == pytest.approx(alone.itm_prob, abs=1e-4)
        assert resp.json()["itc_similarity"] == pytest.approx(alone.itc_similarity, abs=1e-4)
    pids = {pid for pid, _ in served}
    children = {p.pid for p in psutil.Process(proc.pid).children()}
    assert pids <= children and len(pids) == 2  # both front ends served (20 connections, hashed)
    text = httpx.get(f"{url}/metrics", timeout=30).text
    assert metric(text, "mmscale_requests_total", endpoint="/v1/match", status="200") == 20
    assert metric(text, "mmscale_batch_size_sum", task="match") == 20
    assert metric(text, "mmscale_batch_size_count", task="match") < 20  # some batches held several requests
    # every request's wait in the model process's queue is timed, once, apart from its forward
    assert metric(text, "mmscale_queue_wait_seconds_count", task="match") == 20
    assert text.count("# TYPE mmscale_requests_total counter") == 1  # one family, summed over processes


def test_errors_from_either_side_and_embeddings(tiny_frontends):
    _, url = tiny_frontends
    with httpx.Client(timeout=60) as client:
        garbage = post_match(client, url, b"definitely not a jpeg", ["a"])  # refused in the front end
        truncated = post_match(client, url, jpeg(seed=3)[:400], ["a"])  # header ok, decode fails in the model
        too_many = post_match(client, url, jpeg(), ["a"] * 5)
        image = client.post(f"{url}/v1/embed/image", content=jpeg(), headers={"content-type": "image/jpeg"})
        texts = client.post(f"{url}/v1/embed/text", json={"texts": ["a red cube", "a cat"]})
        still = post_match(client, url, jpeg(), ["still serving"])
    assert (garbage.status_code, garbage.json()["error"]["code"]) == (400, "bad_image")
    assert (truncated.status_code, truncated.json()["error"]["code"]) == (400, "bad_image")
    assert (too_many.status_code, too_many.json()["error"]["limit"]) == (400, "max_captions")
    assert image.json()["dim"] == texts.json()["dim"] == len(image.json()["embedding"])
    assert len(texts.json()["embeddings"]) == 2 and still.status_code == 200


def test_global_queue_bound_503_and_token_across_frontends():
    config = dict(frontends=2, max_batch=1, max_wait_ms=0, max_queue=2, slo_ms=0, token="s3cret")
    auth = {"authorization": "Bearer s3cret"}
    with server_process(config, "fake", "3.0") as (_, url), concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert on_fresh_connection(url, lambda c: post_match(c, url, jpeg(), ["x"]))[1].status_code == 401
        wrong = on_fresh_connection(url, lambda c: c.get(f"{url}/metrics", headers={"authorization": "Bearer no"}))
        assert wrong[1].status_code == 401
        busy = [pool.submit(on_fresh_connection, url, lambda c: post_match(c, url, jpeg(), ["x"], auth))
                for _ in range(2)]
        # both busy requests must be admitted before the refusals start (the second while the first
        # is still in its batch), or on a slow machine a refusal can take the second slot instead
        deadline, depth = time.monotonic() + 10, 0
        while depth < 2 and time.monotonic() < deadline:
            depth = httpx.get(f"{url}/readyz").json()["queue_depth"]
            time.sleep(0.01)
        assert depth == 2, "the two busy requests were not both admitted"
        refused = []
        for _ in range(6):  # fresh connections: both front ends see the one global bound
            start = time.monotonic()
            pid, resp = on_fresh_connection(url, lambda c: post_match(c, url, jpeg(), ["x"], auth))
            refused.append((pid, resp.status_code, resp.headers.get("retry-after"), time.monotonic() - start))
        assert [f.result()[1].status_code for f in busy] == [200, 200]
        text = httpx.get(f"{url}/metrics", headers=auth).text
    assert all(status == 503 and retry == "1" for _, status, retry, _ in refused), refused
    assert max(took for *_, took in refused) < 0.5  # at once, not after the 3 s batches
    assert metric(text, "mmscale_rejected_total", reason="queue_full") == 6
    assert metric(text, "mmscale_requests_total", endpoint="/v1/match", status="401") == 1
    assert metric(text, "mmscale_requests_total", endpoint="/v1/match", status="200") == 2


def test_sigterm_drains_both_frontends_then_exits_zero():
    config = dict(frontends=2, max_batch=2, max_wait_ms=0, slo_ms=0)  # all four admitted to a slow model
    with server_process(config, "fake", "0.4") as (proc, url):
        children = psutil.Process(proc.pid).children()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(on_fresh_connection, url, lambda c: post_match(c, url, jpeg(), ["x"]))
                       for _ in range(4)]  # 2 batches of 2 at 0.4 s each
            deadline = time.monotonic() + 5
            while httpx.get(f"{url}/readyz").json()["queue_depth"] < 4 and time.monotonic() < deadline:
                time.sleep(0.01)  # all 4 admitted: the signal lands with every one in flight
            proc.send_signal(signal.SIGTERM)
            statuses = [f.result()[1].status_code for f in futures]
        assert statuses == [200] * 4
        assert proc.wait(timeout=30) == 0, "".join(proc.output)
        assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)


def test_a_dead_frontend_stops_the_server_with_an_error_naming_it():
    with server_process(dict(frontends=2), "fake", "0") as (proc, url):
        victim = psutil.Process(proc.pid).children()[1]
        victim.kill()
        assert proc.wait(timeout=30) != 0
        time.sleep(0.2)
        output = "".join(proc.output)
    assert re.search(r"front end \d exited with status -9", output), output


def test_frontends_exit_when_the_model_process_dies():
    with server_process(dict(frontends=2), "fake", "0") as (proc, url):
        children = psutil.Process(proc.pid).children()
        cmdline = children[0].cmdline()
        workdir = Path(cmdline[cmdline.index("--ipc") + 1]).parent
        proc.kill()  # no drain, no goodbye: the front ends must notice on their own
        proc.wait()
        gone, alive = psutil.wait_procs(children, timeout=20)
        time.sleep(0.2)
        output = "".join(proc.output)  # the front ends' stderr is the server's inherited output
    shutil.rmtree(workdir)  # the killed server could not remove its private directory
    assert len(gone) == 2 and not alive
    assert output.count("lost the model process") == 2, output


def test_a_front_end_refuses_at_its_own_in_flight_bound():
    runner = RemoteRunner("unused", max_inflight=50)
    runner.pending = {rid: None for rid in range(49)}
    runner.admit()
    runner.pending = {rid: None for rid in range(50)}
    with pytest.raises(QueueFull, match="max_queue=50"):
        runner.admit()


def test_a_front_end_imports_neither_torch_nor_the_model_stack():
    """Front ends start in about a second and hold no copy of torch (one per front end otherwise)."""
    code = "import sys, mmscale.serve.frontend; print(sorted({'torch', 'timm', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
