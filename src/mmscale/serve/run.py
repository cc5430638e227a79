"""Run a server: build the predictor, bind (refusing non-loopback without a token), serve until SIGTERM.

On SIGTERM/SIGINT uvicorn stops accepting, lets in-flight requests finish (up to
``drain_timeout_s``), then the app's shutdown drains the batcher; the process exits 0.
With ``frontends > 1`` this process keeps the model and ``supervisor.serve_frontends`` runs the
HTTP front ends as child processes on the same socket.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import torch

from mmscale.data.tokenizer import load_tokenizer
from mmscale.errors import CheckpointError, ConfigError
from mmscale.serve.config import CUDA_GRAPH_MAX_BATCH, MAX_TEXT_LEN, ServeConfig, http_parser
from mmscale.serve.listen import bind_socket, uvicorn_config
from mmscale.serve.defaults import resolve
from mmscale.serve.model_loader import load_model
from mmscale.serve.monitoring import start_monitor, stop_monitor
from mmscale.serve.predictor import ModelPredictor
from mmscale.train.sharded_checkpoint import is_sharded_checkpoint

log = logging.getLogger(__name__)


def build_predictor(cfg: ServeConfig, checkpoint: str | None = None, preset: str | None = None,
                    model_overrides: tuple[str, ...] | list[str] = ()):
    """The model predictor the config asks for (device and graphs resolved for the host)."""
    cfg = resolve(cfg)
    check_device(cfg)  # before any model is built: a missing GPU is a clear error, not a driver traceback
    if checkpoint:
        check_checkpoint(checkpoint)
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    model, _ = load_model(checkpoint, preset, model_overrides)
    return ModelPredictor(model, load_tokenizer(), max_text_len=MAX_TEXT_LEN,
                          max_image_pixels=cfg.max_image_pixels, device=cfg.device, cuda_graphs=cfg.cuda_graphs,
                          max_graph_batch=CUDA_GRAPH_MAX_BATCH)


def check_device(cfg: ServeConfig) -> None:
    """Refuse ``--device cuda`` where torch finds no CUDA device."""
    if cfg.device != "cuda":
        return

    if torch.cuda.is_available():
        return
    built = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", built without CUDA")
    raise ConfigError("serve.device", f"--device cuda, but no CUDA device is available here ({built}, or no "
                                      f"NVIDIA driver/GPU visible); use --device cpu or auto")


def check_checkpoint(checkpoint: str) -> None:
    """Refuse a ``--checkpoint`` that is neither a file nor a sharded checkpoint folder, saying where
    ``mmscale train`` puts one."""
    path = Path(checkpoint)
    if path.is_file():
        return
    if path.is_dir():
        if is_sharded_checkpoint(path):
            return
    written = ("mmscale train writes OUT_DIR/checkpoint.pt, or under torchrun the folder OUT_DIR/checkpoint "
               "(OUT_DIR: its --out / train.out_dir, default runs/train)")
    if path.is_dir():
        hint = f"; did you mean --checkpoint {path / 'checkpoint.pt'}?" if (path / "checkpoint.pt").is_file() else ""
        raise CheckpointError(path, f"is a directory, not a checkpoint file: {written}{hint}")
    raise CheckpointError(path, f"not found: --checkpoint takes a training checkpoint file; {written}")


def check_port_free(cfg: ServeConfig) -> None:
    """Bind and release ``cfg.port`` once, so that a port in use is refused before the model loads.

    Bound without ``SO_REUSEPORT`` even for ``--frontends N``: a port another server already
    shares that way counts as in use, instead of silently splitting its traffic with this one."""
    if cfg.port == 0:
        return
    bind_socket(cfg.host, cfg.port).close()


def serve(cfg: ServeConfig, predictor, announce=print, monitor_file: str | None = None,
          monitor_interval_s: float = 0.2) -> None:
    """Serve ``predictor`` until SIGTERM/SIGINT. Prints ``listening on http://HOST:PORT`` once bound
    (with ``port=0`` the free port chosen), which ``bench load --spawn`` reads. With
    ``monitor_file``, the hardware monitor samples from before the port is bound until the
    server has drained, and its summary line is printed last."""
    cfg = resolve(cfg)
    cfg.validate()  # refuses a non-loopback host without a token
    # before the bind: the sampler is a forked process, and one forked after it would hold the
    # listening socket open (accepting into its backlog) after the server has closed it
    monitor = start_monitor(monitor_file, monitor_interval_s)
    try:
        serve_until_stopped(cfg, predictor, announce)
    finally:  # a drained SIGTERM/SIGINT returns here too: the sampler stops, the file ends whole
        if monitor is not None:
            announce(stop_monitor(monitor, monitor_file))


def serve_until_stopped(cfg: ServeConfig, predictor, announce=print) -> None:
    """Bind, print the listening line, and run the HTTP server(s) until a signal has drained them."""
    # the serve extra: mmscale.cli imports this module for its flags, with or without it
    import uvicorn

    from mmscale.serve.app import create_app

    sock = bind_socket(cfg.host, cfg.port, reuse_port=cfg.frontends > 1)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    announce(f"listening on http://{shown}:{port} ({cfg.server}, max_batch={cfg.max_batch}, "
             f"max_wait_ms={cfg.max_wait_ms}, max_queue={cfg.max_queue}, frontends={cfg.frontends}, "
             f"cuda_graphs={cfg.cuda_graphs}, slo_ms={cfg.slo_ms:g}, http={http_parser()})")
    if http_parser() == "h11":
        log.warning("httptools is not installed: uvicorn parses HTTP with h11 (pure Python), which costs "
                    "every request more front-end CPU; pip install httptools")
    sys.stdout.flush()
    if cfg.frontends > 1:
        from mmscale.serve.supervisor import serve_frontends  # the serve extra, as above

        serve_frontends(cfg, predictor, sock)
        log.info("drained and stopped")
        return
    app = create_app(predictor, cfg)
    config = uvicorn_config(app)
    server = uvicorn.Server(config)
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the signal after its graceful shutdown; a drained SIGTERM is a clean
        # exit (status 0), so the handler it restores and re-raises to is a no-op.
        signal.signal(signal.SIGTERM, lambda *_: None)
    server.run(sockets=[sock])
    log.info("drained and stopped")
