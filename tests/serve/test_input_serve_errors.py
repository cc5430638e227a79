"""``mmscale serve`` input errors: a port in use, ``--device cuda`` without CUDA, a missing
``--checkpoint`` and a wrong JSON key are clean one-line errors naming the flag or field, never a
traceback, and are refused before any model is built."""

import socket
from pathlib import Path

import httpx
import pytest

from mmscale.cli import build_parser, main
from mmscale.errors import ConfigError
from mmscale.serve.config import ServeConfig
from tests.serve.serve_fakes import FakePredictor, live_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_model_build(monkeypatch):
    """Fail the test if serve gets as far as building a model."""
    import mmscale.serve.run as serve_run

    def refuse(*args, **kwargs):
        raise AssertionError("the model was built before the input was refused")

    monkeypatch.setattr(serve_run, "load_model", refuse)


@pytest.fixture
def taken_port():
    """A loopback port held by a listening socket for the length of the test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmscale: error:") and err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_port_in_use_is_a_clean_error_naming_the_port(taken_port, no_model_build, capsys):
    assert main(["serve", "--preset", "tiny", "--port", str(taken_port)]) == 2
    err = one_line_error(capsys)
    assert f"port {taken_port}" in err and "already in use" in err and "--port" in err


def test_port_shared_with_reuse_port_counts_as_in_use_for_frontends(no_model_build, capsys):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        port = sock.getsockname()[1]
        assert main(["serve", "--preset", "tiny", "--frontends", "2", "--port", str(port)]) == 2
    finally:
        sock.close()
    assert "already in use" in one_line_error(capsys)


def test_bind_after_the_model_is_built_is_also_a_clean_error(taken_port):
    from mmscale.serve.listen import bind_socket
    from mmscale.serve.run import serve

    with pytest.raises(ConfigError, match=f"serve.port.*port {taken_port} on 127.0.0.1 is already in use"):
        bind_socket("127.0.0.1", taken_port)
    with pytest.raises(ConfigError, match="already in use"):
        serve(ServeConfig(port=taken_port), FakePredictor(), announce=lambda text: None)


def test_host_not_of_this_machine_is_a_clean_error():
    from mmscale.serve.listen import bind_socket

    with pytest.raises(ConfigError, match="serve.host.*nosuchhost.invalid"):
        bind_socket("nosuchhost.invalid", 0)


def test_device_cuda_without_cuda_is_refused_before_the_model(monkeypatch, no_model_build, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["serve", "--preset", "tiny", "--device", "cuda", "--port", "0"]) == 2
    err = one_line_error(capsys)
    assert "--device cuda" in err and "no CUDA device" in err and "--device cpu" in err


def test_build_predictor_refuses_cuda_without_cuda(monkeypatch, no_model_build):
    import torch

    from mmscale.serve.run import build_predictor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="serve.device"):
        build_predictor(ServeConfig(device="cuda"), preset="tiny")


def test_missing_checkpoint_message_is_about_serve(tmp_path, no_model_build, capsys):
    missing = tmp_path / "runs" / "x" / "last.pt"
    assert main(["serve", "--checkpoint", str(missing), "--port", "0"]) == 2
    err = one_line_error(capsys)
    assert str(missing) in err and "not found" in err and "mmscale train writes OUT_DIR/checkpoint.pt" in err
    assert "--resume" not in err  # that was advice for train


def test_checkpoint_directory_points_at_its_checkpoint_file(tmp_path, no_model_build, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    assert main(["serve", "--checkpoint", str(tmp_path), "--port", "0"]) == 2
    err = one_line_error(capsys)
    assert "is a directory" in err and f"--checkpoint {tmp_path / 'checkpoint.pt'}" in err


def test_help_and_docs_show_the_checkpoint_file_training_writes():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    text = subparsers.choices["serve"].format_help()
    docs = (ROOT / "docs" / "serving.md").read_text()
    for shown in (text, docs):
        assert "last.pt" not in shown
        assert "--checkpoint runs/train/checkpoint.pt" in shown


def test_embed_text_with_the_wrong_key_names_texts():
    from mmscale.serve.codec import decode_request
    from mmscale.serve.items import RequestError

    cfg = ServeConfig()
    for body, want in [(b'{"captions": ["a cat"]}', "JSON body needs 'texts'"),
                       (b'{"texts": "a cat"}', "'texts' must be a list of strings"),
                       (b'{"texts": []}', "'texts'"),
                       (b'{"texts": ["a", " "]}', "texts[1] is empty")]:
        with pytest.raises(RequestError) as info:
            decode_request("embed_text", body, "application/json", [], cfg)
        assert info.value.status == 400 and want in info.value.message
        assert "captions must" not in info.value.message


def test_embed_text_wrong_key_over_http():
    with live_server(FakePredictor(), ServeConfig()) as (url, _), httpx.Client(timeout=30) as client:
        resp = client.post(f"{url}/v1/embed/text", json={"captions": ["a cat"]})
        assert resp.status_code == 400
        message = resp.json()["error"]["message"]
        assert "'texts'" in message and "'captions'" in message  # the field wanted, and the key sent
        ok = client.post(f"{url}/v1/embed/text", json={"texts": ["a cat"]})
        assert ok.status_code == 200
