"""HTTP inference server: dynamic batching across requests (``batched``) and the naive peer.

``create_app(predictor, cfg)`` builds the FastAPI app; ``serve(cfg, predictor)`` runs it.
The predict path is split in three, each testable alone: ``codec.decode_request`` ->
``ModelPredictor.predict`` (batched) -> ``codec.encode_response``.
"""

from mmscale.serve.batcher import RUNNERS
from mmscale.serve.config import ServeConfig

SERVERS = tuple(RUNNERS)


def create_app(predictor, cfg: ServeConfig):
    from mmscale.serve.app import create_app as build

    return build(predictor, cfg)


def serve(cfg: ServeConfig, predictor) -> None:
    from mmscale.serve.run import serve as run

    run(cfg, predictor)


__all__ = ["SERVERS", "ServeConfig", "create_app", "serve"]
