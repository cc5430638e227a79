"""decode_request / encode_response alone: every limit and bad input gives its documented 4xx."""

import base64
import json

import pytest
from tests.serve.conftest import jpeg

from mmscale.serve.codec import decode_request, encode_response
from mmscale.serve.config import ServeConfig
from mmscale.serve.items import Output, RequestError

CFG = ServeConfig(max_body_bytes=200_000, max_image_pixels=200 * 200, max_captions=3)


def refused(task, body, ctype="image/jpeg", captions=("a cat",), cfg=CFG):
    with pytest.raises(RequestError) as info:
        decode_request(task, body, ctype, list(captions), cfg)
    return info.value


def test_raw_and_json_forms_give_the_same_item():
    image = jpeg()
    raw = decode_request("match", image, "image/jpeg", ["a cat", "a dog"], CFG)
    body = json.dumps({"image_b64": base64.b64encode(image).decode(), "captions": ["a cat", "a dog"]}).encode()
    js = decode_request("match", body, "application/json", [], CFG)
    assert raw == js and raw.captions == ["a cat", "a dog"] and raw.image_bytes == image


@pytest.mark.parametrize("case, status, limit", [
    ("body", 413, "max_body_bytes"), ("pixels", 413, "max_image_pixels"),
    ("captions", 400, "max_captions"), ("chars", 400, "max_caption_chars"),
])
def test_each_limit_names_itself(case, status, limit):
    body, captions = jpeg(), ["a cat"]
    if case == "body":
        body = b"\xff" * 200_001
    elif case == "pixels":
        body = jpeg(201, 200)
    elif case == "captions":
        captions = ["a", "b", "c", "d"]
    else:
        captions = ["x" * 1001]
    err = refused("match", body, captions=captions)
    assert (err.status, err.limit) == (status, limit)
    assert limit in err.message and err.as_dict()["error"]["limit"] == limit


@pytest.mark.parametrize("body, ctype, captions, status, code", [
    (b"not an image", "image/jpeg", ["a"], 400, "bad_image"),
    (b"", "image/jpeg", ["a"], 400, "bad_image"),
    (b"{}", "text/plain", ["a"], 415, "unsupported_media_type"),
    (b"{not json", "application/json", [], 400, "bad_request"),
    (b'{"image_b64": "%%%"}', "application/json", [], 400, "bad_image"),
    (None, "image/jpeg", [], 400, "bad_request"),  # match needs a caption
    (None, "image/jpeg", ["  "], 400, "bad_request"),
])
def test_bad_inputs(body, ctype, captions, status, code):
    err = refused("match", jpeg() if body is None else body, ctype, captions)
    assert (err.status, err.code) == (status, code)


def test_embed_text_validates_texts():
    assert decode_request("embed_text", b'{"texts": ["a", "b"]}', "application/json", [], CFG).captions == ["a", "b"]
    assert refused("embed_text", b'{"texts": "a"}', "application/json").code == "bad_request"
    assert refused("embed_text", b'{"texts": ["a","b","c","d"]}', "application/json").limit == "max_captions"


def test_encode_response_shapes_and_rejects_nan():
    out = encode_response("match", Output(itm_prob=[0.25, 0.5], itc_similarity=[0.1, -0.2]))
    assert out == {"itm_prob": [0.25, 0.5], "itc_similarity": [0.1, -0.2]}
    assert encode_response("embed_image", Output(embeddings=[[0.6, 0.8]])) == {"embedding": [0.6, 0.8], "dim": 2}
    with pytest.raises(ValueError):
        encode_response("match", Output(itm_prob=[float("nan")], itc_similarity=[0.0]))


def test_config_refuses_public_bind_without_token():
    from mmscale.errors import ConfigError

    with pytest.raises(ConfigError, match="serve.host"):
        ServeConfig(host="0.0.0.0").validate()
    ServeConfig(host="0.0.0.0", token="s3cret").validate()
    ServeConfig(host="0.0.0.0", insecure=True).validate()
