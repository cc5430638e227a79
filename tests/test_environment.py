"""The short fingerprint every result row carries, from a constructed full fingerprint."""

from __future__ import annotations

import hashlib

from mmscale import __version__, environment
from mmscale.environment import row_fingerprint


def test_row_fingerprint_names_the_device_and_hashes_the_host():
    env = {"hostname": "gpu-node-7", "python": "3.11.7", "cpu_model": "AMD EPYC", "cpu_count_usable": 16,
           "gpus": [{"name": "NVIDIA H100 80GB HBM3"}, {"name": "NVIDIA H100 80GB HBM3"}],
           "torch": {"version": "2.14.1", "cuda": "13.0"}, "git": {"commit": "abc123", "dirty": False}}
    short = row_fingerprint(env)
    assert short == {"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "gpu_count": 2, "cpu": "AMD EPYC",
                     "cores": 16, "torch": "2.14.1", "cuda": "13.0", "python": "3.11.7", "mmscale": __version__,
                     "git_commit": "abc123", "git_dirty": False,
                     "host": hashlib.sha256(b"gpu-node-7").hexdigest()[:12]}
    cpu_only = row_fingerprint({"gpus": [], "hostname": ""})
    assert cpu_only["device"] == "cpu" and cpu_only["gpu"] is None and cpu_only["host"] is None


def test_mmscale_run_from_a_source_tree_still_names_its_version(monkeypatch):
    real = environment.importlib.metadata.version

    def no_installed_mmscale(name):
        if name == "mmscale":
            raise environment.importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(environment.importlib.metadata, "version", no_installed_mmscale)
    assert environment.package_versions(("mmscale", "torch"))["mmscale"] == __version__
