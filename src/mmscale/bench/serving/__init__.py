"""The serving benchmarks: ``mmscale bench serve`` (offline throughput, our batched server against the
naive one, overload, the LitServe peer), the server's start-up cost, and the load generator checked
against ``wrk``.

- ``config``: ``ServeBenchConfig``, the settings of one ``mmscale bench serve`` run
- ``offline``: the model's batch throughput without a server (the ceiling the servers are held to)
- ``server_side``: what a spawned server reports on /metrics and what its processes use
- ``servers``: the command lines of the servers a run starts
- ``run``: ``bench_serving(cfg)``: every server in turn, one JSON document
- ``summary``: the ratios the targets are stated in, and the LitServe comparison's table
- ``litserve_peer``: our model behind LitServe (``python -m mmscale.bench.serving.litserve_peer``)
- ``startup``: seconds to ready and device memory per CUDA-graph setting
- ``crosscheck``: our load generator against ``wrk`` on the same endpoint
"""
