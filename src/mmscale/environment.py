"""The environment fingerprint written into every results file.

Two runs are only comparable when they ran on the same device and software; ``compare``
prints the fields that differ so that a "regression" caused by a driver upgrade is visible
as such. Every probe is best effort: a missing tool yields ``None``, never an exception.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil
import torch

from mmscale import __version__

PACKAGES = (
    "mmscale", "torch", "torchvision", "timm", "transformers", "tokenizers", "numpy", "pillow",
    "psutil", "nvidia-ml-py", "matplotlib", "jsonschema", "aiohttp", "fastapi", "uvicorn",
    "httptools", "uvloop", "torchcodec",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            # mmscale run from a source tree (PYTHONPATH) has no installed metadata; it knows its version
            versions[name] = __version__ if name == "mmscale" else None
    return versions


def git_revision(start: Path | None = None) -> dict[str, str | bool | None]:
    """Commit hash and whether the tree had uncommitted changes (a dirty run is not reproducible)."""
    cwd = start or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5,
        )
        return {"commit": rev.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def gpu_info() -> list[dict]:
    """One dict per visible CUDA device: name, memory, capability, and the NVML driver version."""
    if not torch.cuda.is_available():
        return []
    driver = None
    try:
        import pynvml  # nvidia-ml-py: imported where a GPU is, like the monitor's NVML probe

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else driver
    except Exception:  # NVML absent or unusable: the torch fields still identify the device
        driver = None
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append({
            "index": index,
            "name": props.name,
            "total_memory_gib": round(props.total_memory / 2**30, 2),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "driver": driver,
        })
    return gpus


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def fingerprint() -> dict:
    """Everything that identifies where and with what a run was measured."""
    try:
        torch_info = {
            "version": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "nccl": ".".join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else None,
            "num_threads": torch.get_num_threads(),
        }
    except Exception:
        torch_info = {"version": None, "cuda": None, "cudnn": None, "nccl": None, "num_threads": None}
    mem_gib = round(psutil.virtual_memory().total / 2**30, 2)
    usable_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": usable_cpus,
        "host_memory_gib": mem_gib,
        "gpus": gpu_info(),
        "torch": torch_info,
        "packages": package_versions(),
        "git": git_revision(),
    }


def describe_device(env: dict) -> str:
    """One line naming the device a run used, for report headers: "1x NVIDIA H100 80GB HBM3"."""
    gpus = env.get("gpus") or []
    if gpus:
        names = {g["name"] for g in gpus}
        return ", ".join(f"{sum(g['name'] == n for g in gpus)}x {n}" for n in sorted(names))
    return f"CPU only: {env.get('cpu_model') or 'unknown CPU'}, {env.get('cpu_count_usable')} usable cores"


def row_fingerprint(env: dict | None = None) -> dict:
    """The short, flat fingerprint every result row carries (``result_rows``): enough to tell two
    machines and builds apart; the hostname only as a hash, so shared rows name no machine."""
    env = env if env is not None else fingerprint()
    gpus = env.get("gpus") or []
    git = env.get("git") or {}
    torch_info = env.get("torch") or {}
    hostname = env.get("hostname") or ""
    return {
        "device": "cuda" if gpus else "cpu",
        "gpu": gpus[0]["name"] if gpus else None,
        "gpu_count": len(gpus),
        "cpu": env.get("cpu_model"),
        "cores": env.get("cpu_count_usable"),
        "torch": torch_info.get("version"),
        "cuda": torch_info.get("cuda"),
        "python": env.get("python"),
        "mmscale": __version__,
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "host": hashlib.sha256(hostname.encode()).hexdigest()[:12] if hostname else None,
    }
