"""Input-path benchmarks: how the training loop reads JPEG files, and what each decoder costs.

- ``auto``: ``mmscale bench decode-auto``: training with ``data.decode=auto`` against both fixed
  paths (and against synthetic device batches), one process; ``partners`` builds each run's input
  path, ``steady`` turns the runs' logs into steady-state figures and ratios
- ``pipelines``: ``mmscale bench gpu-decode``: complete input pipelines (reference DataLoader, our
  CPU and GPU decode paths and their variants, nvjpeg ceilings) in images/s, one run;
  ``timing`` times them, ``photos`` writes the JPEG set they read
- ``backends``: JPEG decoders side by side (PIL, torchvision, TorchCodec, nvjpeg batches)
- ``gil``: does the decode call let other Python threads run (docs/notes/gpu-decode-and-the-gil.md)
"""
