"""A real server process with a slow fake model, for the SIGTERM drain test:
``python -m tests.serve.slow_server DELAY_S``."""

import sys

from mmscale.serve.config import ServeConfig
from mmscale.serve.run import serve
from tests.serve.serve_fakes import FakePredictor

if __name__ == "__main__":
    # admission by the SLO off: the drain test needs every request admitted to a deliberately slow model
    serve(ServeConfig(port=0, max_batch=2, max_wait_ms=0, slo_ms=0), FakePredictor(delay_s=float(sys.argv[1])))
