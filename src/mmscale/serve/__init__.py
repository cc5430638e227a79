"""HTTP inference server: dynamic batching across requests (``batched``) and the naive peer.

``app.create_app(predictor, cfg)`` builds the FastAPI app; ``run.serve(cfg, predictor)`` runs it.
The predict path is split in three, each testable alone: ``codec.decode_request`` ->
``ModelPredictor.predict`` (batched) -> ``codec.encode_response``.
"""

from mmscale.serve.batcher import RUNNERS
from mmscale.serve.config import ServeConfig

SERVERS = tuple(RUNNERS)

__all__ = ["SERVERS", "ServeConfig"]
