"""The OpenAPI schema is the contract: schemathesis generates requests from it against the real
server on a loopback port, and every check must pass (status, content type, body and headers
as documented, positive data accepted, negative data rejected, wrong methods answered 405)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mmscale.serve.config import ServeConfig
from tests.serve.serve_fakes import FakePredictor, live_server

IMAGE_PATHS = ("/v1/match", "/v1/embed/image")


@pytest.fixture(scope="module")
def server_url():
    cfg = ServeConfig(device="cpu", max_batch=8, max_wait_ms=1, max_captions=4, slo_ms=0)
    with live_server(FakePredictor(), cfg) as (url, _):
        yield url


def only_undecodable_images_refused(ctx: CheckContext, response, case) -> bool | None:
    """A generated image body is random bytes, which no schema can tell from an image: on the image
    endpoints the one 400 that schema-valid data may earn is ``bad_image``."""
    if case.path in IMAGE_PATHS and response.status_code == 400:
        code = response.json()["error"]["code"]
        if code != "bad_image":
            raise Failure(operation=case.operation.label, title="Valid data refused",
                          message=f"{case.path} answered 400 {code!r} to schema-valid data")
    return None


OPERATIONS = [("POST", "/v1/match"), ("POST", "/v1/embed/image"), ("POST", "/v1/embed/text"),
              ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]


CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS]
CASES += [(m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m == "POST"]  # GETs take no input


@pytest.mark.parametrize("method, path, mode", CASES)
def test_the_server_keeps_to_its_schema(server_url, method, path, mode):
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    assert {(m.upper(), p) for p, ms in schema.raw_schema["paths"].items() for m in ms} >= set(OPERATIONS)
    operation = schema[path][method]
    excluded = [positive_data_acceptance] if path in IMAGE_PATHS else []  # bodies can be valid, not images
    extra = [only_undecodable_images_refused] if mode == GenerationMode.POSITIVE else []

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        case.call_and_validate(excluded_checks=excluded, additional_checks=extra,
                               timeout=10)

    check()
