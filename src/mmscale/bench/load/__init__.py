"""The load generator, ``mmscale bench load``: latency percentiles and throughput of a server under
closed- and open-loop load, sent as real HTTP.

- ``runner``: ``bench_load(cfg)``: every load level until stable, the SLO search, the rows
  (``LoadConfig``, ``LoadRow``, ``LoadResult``, ``format_table``)
- ``client``: one load-generator process; ``pool``: the processes, one job each per window
- ``payload``: request payloads, built before any timing
- ``stats``: pure statistics over the request records; ``slo``: the SLO-bounded capacity search
- ``spawn``: ``--spawn``: start ``mmscale serve`` (or a peer) on a free loopback port
"""
