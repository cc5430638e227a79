"""The GPU decode path's logic on CPU: the batch JPEG decoders' CPU builds stand in for nvjpeg.

What must hold on any device: bad samples are skipped with the same reasons and counts as the
CPU path, non-JPEG samples fall back to the CPU path, and pixels match the CPU path closely.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from mmscale.data import gpu_decode
from mmscale.data.gpu_decode import JPEG_DECODERS, GpuDecoder, decode_jpegs, resize_to_square, resolve_decode
from mmscale.data.gpu_raw import gpu_decodable, is_jpeg, jpeg_complete
from tests.data.raw_batches import read_raw_batch
from mmscale.data.image import SampleSkip, decode_image, read_bytes
from mmscale.data.skips import SkipCounter, SkipReason
from tests.data.conftest import FakeTokenizer, exif_rotated_jpeg

SIZE = 32


def image_bytes(fmt: str, size=(64, 48), mode="RGB", seed=0, **save) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    # smooth content so JPEG compression error stays small and comparisons are meaningful
    arr = (arr.astype(np.float32) * 0.2 + np.linspace(0, 200, size[0])[None, :, None]).astype(np.uint8)
    img = Image.fromarray(arr, "RGB").convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.fixture
def sample_files(tmp_path):
    """One file of every kind the decoder must handle, good and bad."""
    good = image_bytes("JPEG", quality=95)
    files = {
        "good1.jpg": good,
        "good2.jpg": image_bytes("JPEG", size=(80, 60), seed=1, quality=95),
        "gray.jpg": image_bytes("JPEG", mode="L", seed=2, quality=95),
        "png.png": image_bytes("PNG", seed=3),
        "cmyk.jpg": image_bytes("JPEG", mode="CMYK", seed=4),
        "progressive.jpg": image_bytes("JPEG", seed=5, progressive=True),
        "truncated.jpg": good[: len(good) // 2],
        "corrupt.jpg": good[:200] + bytes(range(256)) * 4 + b"\xff\xd9",
        "text.jpg": b"this is not an image at all",
        "empty.jpg": b"",
        "huge.jpg": image_bytes("JPEG", size=(400, 300), seed=6),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "adir.jpg").mkdir()
    names = list(files) + ["adir.jpg", "missing.jpg"]
    items = [(i, str(tmp_path / n), f"caption {n}") for i, n in enumerate(names)]
    return items + [(len(items), str(tmp_path / "good1.jpg"), "   ")]  # good image, empty caption


MAX_PIXELS = 100_000  # huge.jpg (120,000 px) is over it


def cpu_reference(items):
    """What ``decode=cpu`` does with the same files: images by index, and skip counts."""
    counter, images = SkipCounter(), {}
    for index, path, caption in items:
        try:
            data = read_bytes(path)
            if not caption.strip():
                raise SampleSkip(SkipReason.empty_caption)
            images[index] = decode_image(data, SIZE, MAX_PIXELS)
            counter.add_used()
        except SampleSkip as skip:
            counter.add(skip.reason, path)
    return images, counter


def test_jpeg_markers():
    good = image_bytes("JPEG")
    assert is_jpeg(good) and jpeg_complete(good)
    assert not jpeg_complete(good[:-10])
    assert jpeg_complete(good + b"\x00\x00")
    assert not is_jpeg(image_bytes("PNG"))


def test_routing_to_gpu_or_cpu():
    assert gpu_decodable(image_bytes("JPEG"), MAX_PIXELS)
    assert gpu_decodable(image_bytes("JPEG", mode="L"), MAX_PIXELS)
    assert not gpu_decodable(image_bytes("PNG"), MAX_PIXELS)
    assert not gpu_decodable(image_bytes("JPEG", mode="CMYK"), MAX_PIXELS)
    assert not gpu_decodable(image_bytes("JPEG", progressive=True), MAX_PIXELS)
    with pytest.raises(SampleSkip) as info:
        gpu_decodable(image_bytes("JPEG", size=(400, 300)), MAX_PIXELS)
    assert info.value.reason.value == "too_many_pixels"


def test_same_skips_and_counts_as_cpu_path(sample_files):
    cpu_images, cpu_counter = cpu_reference(sample_files)
    raw = read_raw_batch(sample_files, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8)
    batch = GpuDecoder(SIZE, MAX_PIXELS, "cpu")(raw)
    assert batch.skips.as_dict() == cpu_counter.as_dict()
    assert batch.skips.used == len(batch) == len(cpu_images)
    assert batch.skips.read == len(sample_files)
    assert batch.images.dtype == torch.uint8 and batch.images.shape == (len(batch), 3, SIZE, SIZE)
    assert batch.input_ids.shape == (len(batch), 8)
    assert sorted(batch.indices.tolist()) == sorted(cpu_images)
    # every caption still belongs to its own image after skips removed rows
    for row, index in enumerate(batch.indices.tolist()):
        assert batch.captions[row] == sample_files[index][2]
        diff = (batch.images[row].float() - cpu_images[index].float()).abs().mean().item()
        assert diff < 6.0, f"sample {index}: mean abs diff {diff:.1f} grey levels from the CPU path"
    assert set(batch.skips.by_reason) >= {"missing_file", "not_a_file", "empty_file", "not_an_image",
                                          "too_many_pixels", "truncated_image", "empty_caption"}


def test_decoder_refusal_falls_back_to_cpu_path_and_counts(sample_files, monkeypatch):
    """A JPEG the batch decoder rejects (as nvjpeg may) goes through the CPU path: decoded there
    when it can be, counted with the CPU path's reason when not."""
    import mmscale.data.gpu_decode as gd

    items = [s for s in sample_files if s[1].endswith(("good1.jpg", "good2.jpg", "gray.jpg")) and s[2].strip()]
    raw = read_raw_batch(items, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8)
    real = gd.decode_jpegs
    monkeypatch.setattr(gd, "decode_jpegs", lambda jpegs, device: [None] + real(jpegs[1:], device))
    batch = GpuDecoder(SIZE, MAX_PIXELS, "cpu")(raw)
    assert len(batch) == 3 and batch.skips.skipped == 0  # first one decoded by the CPU fallback
    # now make the first JPEG undecodable everywhere: it must be counted, not lost
    raw = read_raw_batch(items, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8)
    first_end = int(raw.jpeg_offsets[1])
    raw.jpeg_bytes[3:first_end] = 0  # keep the SOI marker, zero the rest of the first stream
    batch = GpuDecoder(SIZE, MAX_PIXELS, "cpu")(raw)
    assert len(batch) == 2 and batch.skips.skipped == 1 and batch.skips.read == 3
    assert batch.skips.examples[0].path == items[0][1]


def as_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


@pytest.fixture(params=sorted(JPEG_DECODERS))
def backend(request, monkeypatch):
    """Each batch JPEG decoder in turn, as the one ``decode_jpegs`` picks by default."""
    if request.param == "torchcodec":
        pytest.importorskip("torchcodec.decoders")
    monkeypatch.setattr(gpu_decode, "jpeg_backend", lambda: request.param)
    return request.param


def test_batched_decode_isolates_a_bad_stream(backend):
    good = as_tensor(image_bytes("JPEG"))
    bad = as_tensor(b"\xff\xd8\xff\xe0" + b"\x01" * 40)
    truncated = as_tensor(image_bytes("JPEG")[:300])
    out = decode_jpegs([good, bad, good, truncated], "cpu")
    assert out[1] is None and out[3] is None
    assert out[0].shape == (3, 48, 64) and out[0].dtype == torch.uint8 and torch.equal(out[0], out[2])


@pytest.mark.parametrize("kind", ["baseline", "grayscale", "cmyk", "progressive", "exif_rotated"])
def test_decoders_match_pil_on_the_held_out_formats(backend, kind):
    """Pixels within one grey level of the CPU path's PIL decode (exif_transpose + convert('RGB'))."""
    save = {"grayscale": {"mode": "L"}, "cmyk": {"mode": "CMYK"}, "progressive": {"progressive": True}}
    data = exif_rotated_jpeg() if kind == "exif_rotated" else image_bytes(
        "JPEG", size=(96, 72), seed=7, quality=90, **save.get(kind, {}))
    (decoded,) = decode_jpegs([as_tensor(data)], "cpu")
    if kind == "exif_rotated" and backend == "torchvision":
        # torchvision ignores the orientation: why the GPU input path decodes rotated JPEGs on the CPU
        assert decoded.shape == (3, 72, 96)
        return
    pil = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    expected = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1)
    assert decoded.dtype == torch.uint8 and decoded.shape == expected.shape
    assert (decoded.int() - expected.int()).abs().max() <= 1


def test_decoders_agree_with_each_other():
    pytest.importorskip("torchcodec.decoders")
    jpegs = [as_tensor(image_bytes("JPEG", size=(80 + 8 * k, 60), seed=k, quality=85)) for k in range(3)]
    ours, theirs = (decode_jpegs(jpegs, "cpu", backend=name) for name in ("torchcodec", "torchvision"))
    assert all((a.int() - b.int()).abs().max() <= 1 for a, b in zip(ours, theirs))


def test_torchcodec_is_the_default_where_it_loads():
    loads = gpu_decode.jpeg_backend.__wrapped__() == "torchcodec"
    try:
        import torchcodec.decoders  # noqa: F401
    except ImportError:
        assert not loads
    else:
        assert loads


def test_exif_rotated_jpeg_takes_the_cpu_path_and_matches_it(tmp_path):
    """nvjpeg's handling of the orientation is not checked, so a rotated JPEG is decoded in the worker."""
    data = exif_rotated_jpeg(size=(60, 40), quality=95)
    assert not gpu_decodable(data, MAX_PIXELS)
    (tmp_path / "rotated.jpg").write_bytes(data)
    items = [(0, str(tmp_path / "rotated.jpg"), "a rotated photo")]
    batch = GpuDecoder(SIZE, MAX_PIXELS, "cpu")(read_raw_batch(items, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8))
    assert torch.equal(batch.images[0], decode_image(data, SIZE, MAX_PIXELS))


def test_resize_groups_sizes_and_keeps_order():
    a = torch.full((3, 40, 60), 10, dtype=torch.uint8)
    b = torch.full((3, 20, 20), 200, dtype=torch.uint8)
    c = torch.full((3, 40, 60), 90, dtype=torch.uint8)
    out = resize_to_square([a, b, c], 16)
    assert out.shape == (3, 3, 16, 16) and out.dtype == torch.uint8
    assert out[:, 0, 5, 5].tolist() == [10, 200, 90]


def test_resolve_decode_on_cpu():
    assert resolve_decode("cpu", "cpu")[0] == "cpu"
    choice, why = resolve_decode("auto", "cpu")
    assert choice == "cpu" and "not CUDA" in why
    from mmscale.errors import ConfigError

    with pytest.raises(ConfigError, match="data.decode"):
        resolve_decode("gpu", "cpu")


def test_the_decoder_keeps_its_busy_time_and_image_count(sample_files):
    decoder = GpuDecoder(SIZE, MAX_PIXELS, "cpu")
    assert (decoder.busy_s, decoder.images) == (0.0, 0)
    for _ in range(2):
        batch = decoder(read_raw_batch(sample_files, FakeTokenizer(), SIZE, MAX_PIXELS, max_text_len=8))
    assert decoder.images == 2 * len(batch) > 0
    assert decoder.busy_s > 0 and 0 < decoder.busy_cpu_s <= decoder.busy_s * 1.5
