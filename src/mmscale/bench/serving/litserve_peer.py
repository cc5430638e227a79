"""LitServe peer for the serving benchmark: the same model and predictor behind LitServe's batching.

What a user gets by wrapping our model in LitServe instead of ``mmscale serve``: LitServe's HTTP
server processes, its request queue and its dynamic batching (``max_batch_size``,
``batch_timeout``) feed ``ModelPredictor.predict`` in one inference worker. The model, decode and
padding are ours, so the comparison is of the serving layer alone. LitServe reads JSON bodies, so
requests are ``{"image_b64": ..., "captions": [...]}`` on ``/v1/match`` (our server takes the same
form; ``mmscale bench serve --litserve`` measures both with it).

    python -m mmscale.bench.serving.litserve_peer --preset tiny --device cpu --max-batch 16

Prints ``listening on http://127.0.0.1:PORT`` once it has a port; ``GET /health`` answers ``ok``
when the worker has set up (model built, every batch shape warmed).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import socket

import litserve as ls  # the test extra's; this module only runs as the peer's own process
import torch
from fastapi import HTTPException  # LitServe's own web framework: there whenever litserve is

from mmscale.serve.codec import encode_response
from mmscale.serve.config import ServeConfig
from mmscale.serve.items import Item, Output
from mmscale.serve.run import build_predictor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MatchAPI(ls.LitAPI):
    """``/v1/match`` over LitServe: one image and its captions per request. Defined at module level:
    LitServe starts its worker with multiprocessing's spawn, which pickles the API by reference."""

    def __init__(self, settings: dict, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def setup(self, device):
        opts = self.settings
        cfg = ServeConfig(device=opts["device"], cuda_graphs=opts["cuda_graphs"], cpu_threads=opts["cpu_threads"])
        self.predictor = build_predictor(cfg, opts["checkpoint"], opts["preset"])
        self.predictor.warm_buckets(opts["max_batch"], opts["max_captions"])  # as our server does

    def decode_request(self, request):
        try:
            return Item("match", base64.b64decode(request["image_b64"], validate=True), list(request["captions"]))
        except (KeyError, TypeError, binascii.Error):
            raise HTTPException(400, "expected JSON {'image_b64': ..., 'captions': [...]}") from None

    def batch(self, inputs):
        return list(inputs)  # Items do not stack; predict takes the list

    def predict(self, items):
        return self.predictor.predict("match", items)

    def unbatch(self, outputs):
        return list(outputs)

    def encode_response(self, output):
        if not isinstance(output, Output):  # a RequestError for this request
            raise HTTPException(output.status, output.message)
        return encode_response("match", output)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--preset")
    model.add_argument("--checkpoint")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=1.0)
    parser.add_argument("--max-captions", type=int, default=16, help="caption rows warmed per image, as our server")
    parser.add_argument("--cuda-graphs", action="store_true")
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--api-servers", type=int, default=1, help="LitServe's HTTP server processes")
    parser.add_argument("--port", type=int, default=0, help="0: a free one")
    args = parser.parse_args(argv)
    settings = {k: getattr(args, k) for k in ("preset", "checkpoint", "device", "max_batch", "max_captions",
                                              "cuda_graphs", "cpu_threads")}
    api = MatchAPI(settings, max_batch_size=args.max_batch, batch_timeout=args.max_wait_ms / 1000.0,
                   api_path="/v1/match")
    accelerator = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    server = ls.LitServer(api, accelerator=accelerator, devices=1, workers_per_device=1, timeout=60)
    port = args.port or free_port()
    print(f"listening on http://127.0.0.1:{port} (LitServe {ls.__version__})", flush=True)
    server.run(host="127.0.0.1", port=port, num_api_servers=args.api_servers, log_level="warning",
               generate_client_file=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
