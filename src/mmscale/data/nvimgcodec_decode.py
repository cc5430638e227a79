"""nvImageCodec as the GPU path's JPEG decoder (``data.gpu_decoder=nvimgcodec``).

Why a second decoder: torchvision's batched ``decode_jpeg(..., device="cuda")`` takes the GIL
back about once per image, so beside any other busy thread of the training process it stalls
(0.012x its own speed on an H200, BENCHMARKS.md). nvImageCodec, NVIDIA's codec library (the one
DALI decodes with), takes a whole batch in one call, runs its own CPU threads for the host part
of decoding, and can use the hardware JPEG engines of A100/H100-class GPUs. Its images reach
torch through DLPack without a copy.

Which of its JPEG decoders runs is a choice (``BACKENDS``): the library's default lets every
backend take part (which one took our JPEGs was not checked), and its CUDA decoder by default
leaves Huffman decoding of images under about 1 MP to host threads (nvJPEG's hybrid mode); ``hw`` sends the batch to the hardware engines first, with the CUDA
decoder for what they refuse; ``cuda`` uses the CUDA decoder alone. Both named variants set its
Huffman threshold to 0, so that Huffman decoding runs on the GPU and the host threads stay free
for the DataLoader's workers. (The library files that decoder under ``HYBRID_CPU_GPU``; asking
for ``GPU_ONLY`` alone finds no JPEG decoder and fails.)

It is optional: ``pip install nvidia-nvimgcodec-cu13 nvidia-nvjpeg`` (cu12 builds for CUDA 12).
Like torchvision's path, a stream it cannot decode comes back as None, and the caller retries it
on the CPU path, which decodes it or names the reason it is skipped.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install nvidia-nvimgcodec-cu13 nvidia-nvjpeg (or the -cu12 build for CUDA 12)"
BACKENDS = {  # variant -> the library's BackendKind names, in order of preference (None: its default)
    "default": None,
    "hw": ("HW_GPU_ONLY", "HYBRID_CPU_GPU"),
    "cuda": ("HYBRID_CPU_GPU",),  # the library files its nvJPEG CUDA decoder under this kind
}
GPU_HUFFMAN = "nvjpeg_cuda_decoder:hybrid_huffman_threshold=0"  # the named variants' decoder option


def installed() -> bool:
    """Whether ``nvidia.nvimgcodec`` can be imported, without importing it (its import loads the
    codec libraries and prints to stderr for each one missing)."""
    import importlib.util
    import sys

    if "nvidia.nvimgcodec" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("nvidia") is not None and importlib.util.find_spec("nvidia.nvimgcodec") is not None
    except (ImportError, ValueError):
        return False


def import_nvimgcodec():
    """The ``nvidia.nvimgcodec`` module; ImportError with the install command when it is missing."""
    try:
        from nvidia import nvimgcodec
    except ImportError as exc:
        raise ImportError(f"nvImageCodec is not installed ({exc}): {INSTALL_HINT}") from exc
    return nvimgcodec


class NvImgCodecJpegs:
    """Encoded JPEGs (uint8 CPU tensors) -> uint8 [3, h, w] tensors on ``device``, None where refused.

    One ``Decoder`` per instance, made at the first call on the thread that decodes. Output is
    RGB without EXIF rotation, as torchvision's decoder and the CPU path give it.
    """

    def __init__(self, device: torch.device | str, backend: str = "default"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown nvImageCodec backend {backend!r} (one of {', '.join(BACKENDS)})")
        self.device = torch.device(device)
        self.backend = backend
        self.decoder = None
        self.params = None
        self.failed_batches = 0  # whole-batch failures (every image then went to the CPU path)

    def _start(self) -> None:
        nvimgcodec = import_nvimgcodec()
        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            kinds = BACKENDS[self.backend]
            if kinds is None:
                self.decoder = nvimgcodec.Decoder(device_id=index)
            else:
                backends = [nvimgcodec.Backend(getattr(nvimgcodec.BackendKind, kind)) for kind in kinds]
                self.decoder = nvimgcodec.Decoder(device_id=index, backends=backends, options=GPU_HUFFMAN)
        else:  # the library's CPU backends (its tests and the CPU stand-in of the GPU path)
            self.decoder = nvimgcodec.Decoder(device_id=nvimgcodec.NVIMGCODEC_DEVICE_CPU_ONLY)
        self.params = nvimgcodec.DecodeParams(apply_exif_orientation=False,
                                              color_spec=nvimgcodec.ColorSpec.SRGB,
                                              sample_format=nvimgcodec.SampleFormat.I_RGB)

    def __call__(self, jpegs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        if not jpegs:
            return []
        if self.decoder is None:
            self._start()
        stream = torch.cuda.current_stream(self.device).cuda_stream if self.device.type == "cuda" else 0
        try:
            images = self.decoder.decode([j.numpy() for j in jpegs], params=self.params, cuda_stream=stream)
        except Exception as exc:  # the CPU path then decodes each one or names why not
            self.failed_batches += 1
            log.warning("nvImageCodec failed on a batch of %d (%s: %s); decoding it on the CPU path",
                        len(jpegs), type(exc).__name__, exc)
            return [None] * len(jpegs)
        out: list[torch.Tensor | None] = []
        for image in images:
            if image is None:
                out.append(None)
                continue
            hwc = torch.from_dlpack(image)  # shares the decoded buffer; ready on ``stream``
            if hwc.dim() != 3 or hwc.shape[-1] != 3 or hwc.dtype != torch.uint8:
                out.append(None)  # not 8-bit RGB as asked: let the CPU path decide
                continue
            out.append(hwc.permute(2, 0, 1).to(self.device))
        return out
