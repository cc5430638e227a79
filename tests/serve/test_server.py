"""The real HTTP server on a free loopback port: scores, limits, 503 on a full queue, auth, metrics."""

import concurrent.futures
import time

import httpx
import pytest

from mmscale.serve.config import ServeConfig
from tests.serve.conftest import jpeg
from tests.serve.serve_fakes import FakePredictor, live_server

LIMITS = dict(max_body_bytes=300_000, max_image_pixels=300 * 300, max_captions=4)


@pytest.fixture(scope="module")
def tiny_server(tiny_predictor):
    cfg = ServeConfig(device="cpu", max_batch=8, max_wait_ms=30, slo_ms=0, **LIMITS)  # scores, not admission
    with live_server(tiny_predictor, cfg) as (url, app):
        yield url, app


def post_match(client, url, image, captions, **kw):
    return client.post(f"{url}/v1/match", content=image, params={"caption": captions},
                       headers={"content-type": "image/jpeg", **kw.pop("headers", {})}, **kw)


def test_match_scores_equal_the_unbatched_predictor(tiny_server, tiny_predictor):
    from mmscale.serve.items import Item

    url, app = tiny_server
    jobs = [(jpeg(80, 60, seed=k), [f"caption number {j}" for j in range(1 + k % 3)]) for k in range(6)]
    with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda job: post_match(client, url, *job), jobs))
    for (image, captions), resp in zip(jobs, responses):
        assert resp.status_code == 200, resp.text
        body = resp.json()
        (alone,) = tiny_predictor.predict("match", [Item("match", image, captions)])
        assert body["itm_prob"] == pytest.approx(alone.itm_prob, abs=1e-4)
        assert body["itc_similarity"] == pytest.approx(alone.itc_similarity, abs=1e-4)
    sizes = app.state.server.metrics.batch_size.labels("match")
    assert sizes._sum.get() >= 6  # every request went through a batch


def test_embed_endpoints(tiny_server):
    url, _ = tiny_server
    with httpx.Client(timeout=30) as client:
        image = client.post(f"{url}/v1/embed/image", content=jpeg(), headers={"content-type": "image/jpeg"}).json()
        texts = client.post(f"{url}/v1/embed/text", json={"texts": ["a red cube", "a cat"]}).json()
    assert image["dim"] == len(image["embedding"]) == texts["dim"]
    assert len(texts["embeddings"]) == 2
    assert sum(x * x for x in image["embedding"]) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("case, status, limit_or_code", [
    ("big_body", 413, "max_body_bytes"), ("big_image", 413, "max_image_pixels"),
    ("many_captions", 400, "max_captions"), ("long_caption", 400, "max_caption_chars"),
    ("garbage", 400, "bad_image"), ("truncated", 400, "bad_image"), ("no_caption", 400, "bad_request"),
    ("wrong_type", 415, "unsupported_media_type"), ("bad_json", 400, "bad_request"),
])
def test_limits_and_bad_input_give_documented_4xx_and_server_keeps_serving(tiny_server, case, status, limit_or_code):
    url, _ = tiny_server
    image, captions, headers = jpeg(), ["a cat"], {}
    if case == "big_body":
        image = b"\xff\xd8\xff" + b"0" * 300_001
    elif case == "big_image":
        image = jpeg(301, 300)
    elif case == "many_captions":
        captions = ["a"] * 5
    elif case == "long_caption":
        captions = ["a" * 1001]
    elif case == "garbage":
        image = b"definitely not a jpeg"
    elif case == "truncated":
        image = jpeg(seed=3)[:400]  # header parses, decode fails in the batch
    elif case == "no_caption":
        captions = []
    elif case == "wrong_type":
        headers = {"content-type": "text/plain"}
    elif case == "bad_json":
        image, headers = b"{oops", {"content-type": "application/json"}
    with httpx.Client(timeout=30) as client:
        resp = post_match(client, url, image, captions, headers=headers)
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert limit_or_code in (error.get("limit"), error["code"])
        assert post_match(client, url, jpeg(), ["still serving"]).status_code == 200


def test_health_ready_metrics_and_openapi(tiny_server):
    url, _ = tiny_server
    with httpx.Client(timeout=30) as client:
        assert client.get(f"{url}/healthz").status_code == 200
        assert client.get(f"{url}/readyz").json()["status"] == "ready"
        post_match(client, url, b"junk", ["a"])
        text = client.get(f"{url}/metrics").text
        paths = client.get(f"{url}/openapi.json").json()["paths"]
    assert 'mmscale_requests_total{endpoint="/v1/match",status="400"}' in text
    for name in ("mmscale_queue_depth", "mmscale_batch_size_bucket", "mmscale_request_latency_seconds_bucket"):
        assert name in text
    assert {"/v1/match", "/v1/embed/image", "/v1/embed/text", "/healthz", "/readyz", "/metrics"} <= set(paths)


def test_full_queue_answers_503_with_retry_after_quickly():
    fake = FakePredictor(delay_s=0.5)
    cfg = ServeConfig(max_batch=1, max_wait_ms=0, max_queue=2, slo_ms=0)
    with live_server(fake, cfg) as (url, _), httpx.Client(timeout=30) as client, \
            concurrent.futures.ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(post_match, client, url, jpeg(), ["x"]) for _ in range(2)]
        deadline = time.monotonic() + 5
        while client.get(f"{url}/readyz").json()["queue_depth"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        start = time.monotonic()
        resp = post_match(client, url, jpeg(), ["x"])
        took_s = time.monotonic() - start
        assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
        assert resp.json()["error"]["code"] == "overloaded"
        assert took_s < 0.25  # refused at once, not after the 0.5 s batches
        assert [f.result().status_code for f in busy] == [200, 200]


def test_the_slo_refuses_by_expected_wait_with_the_reason():
    fake = FakePredictor(delay_s=0.2)  # 5 requests/s once the first batch is measured
    cfg = ServeConfig(max_batch=1, max_wait_ms=0, max_queue=100, slo_ms=500)
    with live_server(fake, cfg) as (url, _), httpx.Client(timeout=30) as client, \
            concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert post_match(client, url, jpeg(), ["measure"]).status_code == 200
        busy = [pool.submit(post_match, client, url, jpeg(), ["x"]) for _ in range(2)]
        deadline = time.monotonic() + 5
        while client.get(f"{url}/readyz").json()["queue_depth"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        start = time.monotonic()
        resp = post_match(client, url, jpeg(), ["x"])  # 2 ahead and itself at 5/s = 600 ms > 500 ms
        took_s = time.monotonic() - start
        assert resp.status_code == 503 and "slo_ms=500" in resp.json()["error"]["message"]
        assert took_s < 0.3  # refused at once, not after the 600 ms it would have taken
        assert [f.result().status_code for f in busy] == [200, 200]


def test_token_is_enforced():
    cfg = ServeConfig(token="s3cret")
    with live_server(FakePredictor(), cfg) as (url, _), httpx.Client(timeout=30) as client:
        assert post_match(client, url, jpeg(), ["x"]).status_code == 401
        wrong = post_match(client, url, jpeg(), ["x"], headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert client.get(f"{url}/metrics").status_code == 401
        ok = post_match(client, url, jpeg(), ["x"], headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert client.get(f"{url}/healthz").status_code == 200  # probes stay open


def test_naive_server_gives_the_same_scores(tiny_predictor):
    cfg = ServeConfig(server="naive")
    image, captions = jpeg(seed=5), ["a red cube", "a cat"]
    with live_server(tiny_predictor, cfg) as (url, _), httpx.Client(timeout=30) as client:
        naive = post_match(client, url, image, captions).json()
    from mmscale.serve.items import Item

    (alone,) = tiny_predictor.predict("match", [Item("match", image, captions)])
    assert naive["itm_prob"] == pytest.approx(alone.itm_prob, abs=1e-5)
