"""Measure the two ceilings every GPU figure in BENCHMARKS.md is compared against.

MFU and bandwidth figures are only meaningful against what this device really does, not its
datasheet: a large bf16 matrix product (arithmetic ceiling) and a large device-to-device copy
(memory ceiling, counting bytes read plus bytes written). Also records the software stack and
which optional GPU features (nvjpeg decode, NVML GPM metrics, FSDP2) are usable, so that a
benchmark that skips one says why.

    PYTHONPATH=src python3 benchmarks/device_ceilings.py --out runs/ceilings
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
from pathlib import Path

import torch


def time_cuda_ms(fn, warmup: int = 3, iters: int = 10) -> float:
    """Median milliseconds of ``fn`` timed with CUDA events after warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()  # host-device sync: needed to read the event pair
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def matmul_tflops(n: int = 8192) -> float:
    # Random data: zeros run measurably faster on Hopper and would overstate the ceiling.
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = time_cuda_ms(lambda: a @ b)
    return 2 * n**3 / (ms / 1e3) / 1e12


def copy_tb_per_s(gib: float = 4.0) -> float:
    src = torch.randn(int(gib * 2**30 / 4), device="cuda")
    dst = torch.empty_like(src)
    ms = time_cuda_ms(lambda: dst.copy_(src))
    return 2 * src.numel() * 4 / (ms / 1e3) / 1e12  # read + write


def probe_nvjpeg() -> str:
    try:
        import torchvision
        from PIL import Image
        from torchvision.io import decode_jpeg

        buf = io.BytesIO()
        Image.new("RGB", (640, 480), (120, 30, 200)).save(buf, format="JPEG")
        data = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
        out = decode_jpeg([data, data], device="cuda")
        return f"ok (torchvision {torchvision.__version__}, batch of {len(out)}, {tuple(out[0].shape)})"
    except Exception as exc:  # report, don't fail: this is a probe
        return f"unavailable: {type(exc).__name__}: {exc}"


def probe_gpm() -> str:
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        support = pynvml.nvmlGpmQueryDeviceSupport(handle)
        return f"gpm supported={bool(support.isSupportedDevice)}"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"


def probe_fsdp2() -> str:
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401

        return "torch.distributed.fsdp.fully_shard importable"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ceilings"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("device_ceilings needs a CUDA device")
    props = torch.cuda.get_device_properties(0)
    row = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name(0),
        "sm_count": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "bf16_matmul_tflops": round(matmul_tflops(), 1),
        "d2d_copy_tb_per_s": round(copy_tb_per_s(), 2),
        "nvjpeg": probe_nvjpeg(),
        "nvml_gpm": probe_gpm(),
        "fsdp2": probe_fsdp2(),
        "cpu_count": __import__("os").cpu_count(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ceilings.json").write_text(json.dumps(row, indent=2))
    for key, value in row.items():
        print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
