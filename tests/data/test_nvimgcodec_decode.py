"""``data.gpu_decoder=nvimgcodec`` on CPU, with a stand-in for the library.

nvImageCodec decodes nothing without a CUDA runtime, even on its CPU backends, so these tests
replace ``nvidia.nvimgcodec`` with a module of the same calls that decodes with PIL and returns
HWC arrays with DLPack, as the library's images do. They check our side: the parameters we ask
for, HWC -> CHW, a refused stream or a failed batch going to the CPU path with the same skips and
counts as the torchvision decoder, and the config refusing the option when the library is absent.
The library itself is measured on the GPU (``benchmarks/gpu_decode.py``, nvimgcodec rows).
"""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from mmscale.data.config import DataConfig
from mmscale.data.gpu_decode import GpuDecoder
from mmscale.data.gpu_raw import read_raw_batch
from mmscale.data.nvimgcodec_decode import NvImgCodecJpegs
from mmscale.errors import ConfigError
from tests.data.conftest import FakeTokenizer
from tests.data.test_gpu_decode import MAX_PIXELS, SIZE, image_bytes, sample_files  # noqa: F401 (fixture)


class StandIn(types.ModuleType):
    """The calls of ``nvidia.nvimgcodec`` that ``NvImgCodecJpegs`` makes, decoding with PIL."""

    NVIMGCODEC_DEVICE_CPU_ONLY = -99

    class ColorSpec:
        SRGB = "srgb"

    class SampleFormat:
        I_RGB = "i_rgb"

    class DecodeParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class BackendKind:
        CPU_ONLY, GPU_ONLY, HYBRID_CPU_GPU, HW_GPU_ONLY = "cpu", "gpu", "hybrid", "hw"

    class Backend:
        def __init__(self, backend_kind):
            self.backend_kind = backend_kind

    def __init__(self, fail_batches: bool = False):
        super().__init__("nvidia.nvimgcodec")
        self.made: list[int] = []
        self.backends: list[list[str] | None] = []
        self.options: list[str] = []
        self.calls: list[tuple[int, object]] = []
        outer = self

        class Decoder:
            def __init__(self, device_id, backends=None, options=""):
                outer.made.append(device_id)
                outer.backends.append(None if backends is None else [b.backend_kind for b in backends])
                outer.options.append(options)

            def decode(self, srcs, params, cuda_stream):
                outer.calls.append((len(srcs), params))
                if fail_batches:
                    raise RuntimeError("decoder out of memory")
                return [outer.one(src) for src in srcs]

        self.Decoder = Decoder

    @staticmethod
    def one(src: np.ndarray):
        try:
            image = Image.open(io.BytesIO(src.tobytes()))
            if image.format != "JPEG":
                return None
            return np.ascontiguousarray(np.asarray(image.convert("RGB")))  # HWC, has __dlpack__
        except Exception:
            return None


@pytest.fixture
def stand_in(monkeypatch):
    module = StandIn()
    package = types.ModuleType("nvidia")
    package.nvimgcodec = module
    monkeypatch.setitem(sys.modules, "nvidia", package)
    monkeypatch.setitem(sys.modules, "nvidia.nvimgcodec", module)
    return module


def as_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def test_decodes_to_chw_rgb_with_the_parameters_we_ask_for(stand_in):
    data = image_bytes("JPEG", quality=95)
    decode = NvImgCodecJpegs("cpu")
    good, bad = decode([as_tensor(data), as_tensor(b"not a jpeg")])
    assert bad is None
    expected = torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)
    assert good.shape == (3, 48, 64) and good.dtype == torch.uint8 and torch.equal(good, expected)
    assert stand_in.made == [StandIn.NVIMGCODEC_DEVICE_CPU_ONLY]  # made once, at the first call
    decode([as_tensor(data)])
    assert len(stand_in.made) == 1 and [n for n, _ in stand_in.calls] == [2, 1]
    params = stand_in.calls[0][1].kwargs
    assert params == {"apply_exif_orientation": False, "color_spec": "srgb", "sample_format": "i_rgb"}


def test_same_skips_and_counts_as_the_torchvision_decoder(stand_in, sample_files):  # noqa: F811
    raw = read_raw_batch(sample_files, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8)
    ours = GpuDecoder(SIZE, MAX_PIXELS, "cpu", library="nvimgcodec")(raw)
    raw = read_raw_batch(sample_files, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8)
    theirs = GpuDecoder(SIZE, MAX_PIXELS, "cpu")(raw)
    assert ours.skips.as_dict() == theirs.skips.as_dict()
    assert ours.skips.used + ours.skips.skipped == ours.skips.read == len(sample_files)
    assert ours.indices.tolist() == theirs.indices.tolist()
    assert (ours.images.float() - theirs.images.float()).abs().mean().item() < 2.0
    assert stand_in.calls and stand_in.calls[0][0] > 0  # the JPEGs went through the stand-in


def test_a_failed_batch_is_decoded_on_the_cpu_path(monkeypatch, sample_files):  # noqa: F811
    failing = StandIn(fail_batches=True)
    package = types.ModuleType("nvidia")
    package.nvimgcodec = failing
    monkeypatch.setitem(sys.modules, "nvidia", package)
    monkeypatch.setitem(sys.modules, "nvidia.nvimgcodec", failing)
    decoder = GpuDecoder(SIZE, MAX_PIXELS, "cpu", library="nvimgcodec")
    raw = read_raw_batch(sample_files, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8)
    ours = decoder(raw)
    raw = read_raw_batch(sample_files, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8)
    theirs = GpuDecoder(SIZE, MAX_PIXELS, "cpu")(raw)
    assert ours.skips.as_dict() == theirs.skips.as_dict() and len(ours) == len(theirs)
    assert decoder.decode_jpegs.failed_batches == 1


def test_config_names_the_field_when_the_library_is_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("nvidia") else real(name, *a))
    with pytest.raises(ConfigError, match=r"data.gpu_decoder.*pip install nvidia-nvimgcodec"):
        DataConfig(path="x.jsonl", decode="gpu", gpu_decoder="nvimgcodec").validate()
    DataConfig(path="x.jsonl", decode="cpu", gpu_decoder="nvimgcodec").validate()  # not used: no error
    with pytest.raises(ConfigError, match="data.gpu_decoder.*torchvision, nvimgcodec, nvimgcodec:hw"):
        DataConfig(path="x.jsonl", gpu_decoder="pillow").validate()


@pytest.mark.parametrize("library, backends, options", [
    ("nvimgcodec", None, ""),  # the library's own choice
    ("nvimgcodec:hw", ["hw", "hybrid"], "nvjpeg_cuda_decoder:hybrid_huffman_threshold=0"),
    ("nvimgcodec:cuda", ["hybrid"], "nvjpeg_cuda_decoder:hybrid_huffman_threshold=0"),
])
def test_each_variant_asks_for_its_backends_on_the_gpu(stand_in, library, backends, options):
    from mmscale.data.gpu_decode import jpeg_decoder

    DataConfig(path="x.jsonl", decode="gpu", gpu_decoder=library).validate()  # a value the config takes
    decode = jpeg_decoder(library, torch.device("cuda:1"))
    decode._start()  # what the first batch would do on the device (the decode itself needs CUDA)
    assert stand_in.made == [1] and stand_in.backends == [backends] and stand_in.options == [options]


def test_an_unknown_variant_is_refused():
    from mmscale.data.gpu_decode import jpeg_decoder

    with pytest.raises(ValueError, match="nvImageCodec backend 'fast'"):
        jpeg_decoder("nvimgcodec:fast", torch.device("cpu"))
