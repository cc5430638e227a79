"""A real server process with ``--frontends N``, for tests/serve/test_frontends.py:
``python -m tests.serve.frontends_server CONFIG_JSON tiny`` (the tiny model on CPU) or
``... CONFIG_JSON fake DELAY_S`` (the fake predictor, each batch taking DELAY_S). CONFIG_JSON holds
``ServeConfig`` fields, and optionally ``monitor_file`` and ``monitor_interval_s`` for ``serve``."""

import json
import sys

from mmscale.serve.config import ServeConfig
from mmscale.serve.run import build_predictor, serve
from tests.serve.serve_fakes import FakePredictor

if __name__ == "__main__":
    fields = json.loads(sys.argv[1])
    monitor = {k: fields.pop(k) for k in ("monitor_file", "monitor_interval_s") if k in fields}
    cfg = ServeConfig(port=0, **fields)
    if sys.argv[2] == "tiny":
        import torch

        torch.set_num_threads(1)
        predictor = build_predictor(ServeConfig(device="cpu"), preset="tiny")
    else:
        predictor = FakePredictor(delay_s=float(sys.argv[3]))
    serve(cfg, predictor, **monitor)
