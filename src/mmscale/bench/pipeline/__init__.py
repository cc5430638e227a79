"""The bottleneck analyzer, ``mmscale bench pipeline``: where one training step's time goes, and
what would fix it.

- ``analyze``: ``bench_pipeline(cfg)``: the main run, the worker-side stages and the what-if
  variants, one JSON document (``PipelineConfig``, ``PipelineResult``)
- ``run``: the instrumented training loop and adapters from each input path's batches
- ``stages``: stage timing of one step (CUDA events, host timers on CPU)
- ``workers``: the CPU input path's host stages timed inside the DataLoader workers
- ``verdict``: what bounds the step, as pure functions over stage timings
- ``variants``: what-if variants run in the same process; ``attention``: the attention sweep
- ``table``: console tables over the result; ``targets``: the GPU presets' targets checked
"""
