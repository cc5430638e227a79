"""``DataConfig``: where the samples are and how to turn them into model input.

The batch size is not here: the training job owns it (it depends on devices and accumulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmscale.errors import ConfigError

FORMATS = ("auto", "jsonl", "csv", "coco", "wds")
GPU_DECODERS = ("torchvision", "nvimgcodec", "nvimgcodec:hw", "nvimgcodec:cuda")


@dataclass
class DataConfig:
    path: str = "data/synth"
    """Manifest file (.jsonl, .csv, COCO .json), a .tar shard or shard pattern, or a directory
    holding ``train.jsonl``/``val.jsonl`` or ``train-*.tar``/``val-*.tar``."""
    format: Literal["auto", "jsonl", "csv", "coco", "wds"] = "auto"
    """Manifest format; ``auto`` decides from the file name."""
    image_root: str | None = None
    """Directory image paths are relative to; default: the manifest's directory (COCO: required
    unless paths resolve from the manifest's directory)."""
    image_size: int = 224
    """Side of the square model input, in pixels (images are squashed, as ``Resize((S, S))``)."""
    max_text_len: int = 128
    """Tokens per caption including [CLS]/[SEP]; longer captions are truncated."""
    pad_to_longest: bool = False
    """Pad each batch to its longest caption instead of ``max_text_len`` (fewer tokens, varying shape).
    The text encoder's work scales with the padded length, and masked padding does not change what
    the fused model computes (the reference fusion attends to padding, so its output does)."""
    pad_multiple: int = 0
    """With ``pad_to_longest``: round each batch's length up to a multiple of this (capped at
    ``max_text_len``), so that ``torch.compile`` sees a few lengths, one static graph each, instead
    of one symbolic-length graph. 0: no rounding. ``base`` at 32-48 tokens, where the synthetic
    set's batches of 128 land with 16, is 122.7-131.2 GFLOP per sample against 174.6 at 128;
    measured on one H200 (compiled, autocast, BENCHMARKS.md) the step at 48 tokens ran 1.11x the
    samples/s of the step at 128: the image side, which does not shrink, is most of the step.
    Under ``train.step_graph`` only the length captured first replays from the graph; batches of
    the other lengths run the compiled step uncaptured."""
    tokenizer: str | None = None
    """tokenizer.json, or a directory with tokenizer.json/vocab.txt; default: $MMSCALE_TOKENIZER,
    then the bundled bert-base-uncased vocabulary."""
    num_workers: int = 2
    """DataLoader worker processes (0 = load in the main process)."""
    prefetch_factor: int = 4
    """Batches each worker keeps ready ahead of the consumer."""
    pin_memory: bool = True
    """Pin batches in page-locked memory for async host-to-device copies (only when CUDA is used)."""
    persistent_workers: bool = True
    """Keep workers alive between iterations (saves their start-up and re-fork of the index): an
    evaluation pass after another, WebDataset epochs. Training over an indexed manifest reads one
    iteration for all its epochs, so its workers go on into the next epoch without a pause."""
    strict: bool = False
    """Raise ``DataError`` on the first bad sample instead of counting and skipping it."""
    max_pixels: int = 64_000_000
    """Images with more pixels are skipped as ``too_many_pixels`` (decompression-bomb guard)."""
    limit: int | None = None
    """Use only the first N samples of the manifest (for data-scale runs); None = all."""
    shuffle: bool = True
    """Visit samples in a seed-determined permutation, new each epoch."""
    seed: int = 0
    """Seed of the per-epoch permutation (and of the WebDataset shuffle buffer)."""
    decode: Literal["cpu", "gpu", "auto"] = "cpu"
    """Where images are decoded: ``cpu`` (PIL in workers), ``gpu`` (nvjpeg on the device),
    ``auto`` (training with CUDA and nvjpeg: a few real steps on each path, then the faster one is
    kept and logged; otherwise cpu). Measured on one-H200 hosts with 16 cores (``base``, batch 128,
    640x480 JPEGs): 16 workers with ``cpu`` kept training at 0.97-1.01 of its speed on synthetic
    batches, ``gpu`` at 0.87-0.97 (hosts with fewer cores per GPU were not measured)."""
    decode_threads: int = 2
    """GPU decode: background threads of the training process that feed the step. 2 (default): one
    reads raw batches from the workers, one decodes them with nvjpeg; 1: one thread does both; 0:
    both happen between steps in the step's own thread. Meanwhile the step launches its kernels."""
    decode_process: bool = False
    """GPU decode: run the decoder in a child process with its own GIL instead of a thread of the
    training process (``decode_threads`` is then ignored). The in-thread decoder needs the GIL back
    many times per batch, so anything else holding it (reading raw batches, launching the step's
    kernels) stalls it. Off by default because it measured slower on one-H200 hosts: 0.78x-0.87x
    the in-thread path's images/s, and in compiled training 1.02x the samples/s with twice the data
    wait (the child's second CUDA context shares the GPU by time slices)."""
    gpu_decoder: Literal["torchvision", "nvimgcodec", "nvimgcodec:hw", "nvimgcodec:cuda"] = "torchvision"
    """GPU decode: the library that decodes JPEG batches on the device. ``torchvision``: one batched
    nvjpeg call (``decode_jpeg``), always installed. ``nvimgcodec``: NVIDIA's nvImageCodec (optional:
    ``pip install nvidia-nvimgcodec-cu13 nvidia-nvjpeg``), one call per batch with its own host
    threads and, on A100/H100-class GPUs, the hardware JPEG engines. torchvision's call takes the
    GIL back once per image, which stalls it beside the training step (BENCHMARKS.md).
    ``nvimgcodec`` lets the library choose among all its backends (its CUDA decoder, by default,
    leaves Huffman decoding of images under about 1 MP to host threads); ``nvimgcodec:hw`` puts the
    hardware JPEG engines first and ``nvimgcodec:cuda`` uses only the CUDA decoder, both with
    Huffman decoding on the GPU. Which backend the default used on our JPEGs was not checked. Measured on
    one H200 (BENCHMARKS.md): ``nvimgcodec`` ran 0.70x torchvision's pipeline images/s,
    ``nvimgcodec:hw`` 0.79x and ``nvimgcodec:cuda`` 0.36x, so torchvision stays the default.
    ``benchmarks/gpu_decode.py`` measures all of them."""
    decode_probe_steps: int | None = None
    """``decode=auto`` in training: timed steps per input path (at least) before the faster one is
    kept; None: ``2 * num_workers``, at least 16. When workers deliver in rounds (some batches
    late), timing goes on to the next late batch, for at most ``num_workers * prefetch_factor`` more."""
    decode_probe_warmup_steps: int | None = None
    """``decode=auto``: untimed steps on each path before its timed ones, at least; None:
    ``num_workers + 2``. Timing then waits for a late batch (what workers buffered is used up), for at
    most ``num_workers * prefetch_factor`` more steps, so buffered batches are not timed as speed."""

    def validate(self) -> None:
        if self.image_size < 8:
            raise ConfigError("data.image_size", f"must be >= 8, got {self.image_size}")
        if self.max_text_len < 2:
            raise ConfigError("data.max_text_len", f"must be >= 2 ([CLS] and [SEP]), got {self.max_text_len}")
        if self.pad_multiple < 0:
            raise ConfigError("data.pad_multiple", f"must be >= 0, got {self.pad_multiple}")
        if self.pad_multiple and not self.pad_to_longest:
            raise ConfigError("data.pad_multiple", "rounds the length of data.pad_to_longest=true batches; "
                                                   "without it every batch is max_text_len long")
        if self.num_workers < 0:
            raise ConfigError("data.num_workers", f"must be >= 0, got {self.num_workers}")
        if self.prefetch_factor < 1:
            raise ConfigError("data.prefetch_factor", f"must be >= 1, got {self.prefetch_factor}")
        if self.max_pixels < 1:
            raise ConfigError("data.max_pixels", f"must be >= 1, got {self.max_pixels}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("data.limit", f"must be >= 1 or unset, got {self.limit}")
        if self.decode not in ("cpu", "gpu", "auto"):
            raise ConfigError("data.decode", f"must be cpu, gpu or auto, got {self.decode!r}")
        if self.decode_threads not in (0, 1, 2):
            raise ConfigError("data.decode_threads", f"must be 0, 1 or 2, got {self.decode_threads}")
        if self.gpu_decoder not in GPU_DECODERS:
            raise ConfigError("data.gpu_decoder", f"must be one of {', '.join(GPU_DECODERS)}, got {self.gpu_decoder!r}")
        if self.gpu_decoder.startswith("nvimgcodec") and self.decode != "cpu":
            from mmscale.data.nvimgcodec_decode import INSTALL_HINT, installed

            if not installed():
                raise ConfigError("data.gpu_decoder", f"nvimgcodec is not installed: {INSTALL_HINT}")
        if self.decode_probe_steps is not None and self.decode_probe_steps < 1:
            raise ConfigError("data.decode_probe_steps", f"must be >= 1, got {self.decode_probe_steps}")
        if self.decode_probe_warmup_steps is not None and self.decode_probe_warmup_steps < 0:
            raise ConfigError("data.decode_probe_warmup_steps",
                              f"must be >= 0 or unset, got {self.decode_probe_warmup_steps}")
        if self.format not in FORMATS:
            raise ConfigError("data.format", f"must be one of {', '.join(FORMATS)}, got {self.format!r}")
