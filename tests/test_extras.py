"""Optional extras: pyproject.toml and mmscale.extras agree, a missing extra is one line naming the
pip install, and the core jobs (data, train) import none of them."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from mmscale.cli import main
from mmscale.extras import EXTRA_MODULES, MissingExtra, require_extra

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_each_extras_modules_come_from_its_distributions():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    providers = importlib.metadata.packages_distributions()
    for extra, modules in EXTRA_MODULES.items():
        listed = requirement_names(extras[extra])
        for module in modules:
            dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
            assert dists & listed, f"{module} (from {dists or 'nothing installed'}) is not in [{extra}]"
    (mmscale_self,) = [r for r in extras["test"] if r.startswith("mmscale[")]
    assert set(mmscale_self[len("mmscale["):-1].split(",")) == set(EXTRA_MODULES)  # test has everything


def hide(monkeypatch, *modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # find_spec -> None, import -> ImportError


@pytest.mark.parametrize("argv,command,extra,module", [
    (["serve", "--preset", "tiny"], "mmscale serve", "serve", "fastapi"),
    (["bench", "load", "--spawn", "--preset", "tiny"], "mmscale bench load", "serve", "aiohttp"),
    (["report", "runs/nowhere"], "mmscale report", "report", "matplotlib"),
])
def test_a_command_without_its_extra_says_what_to_install(argv, command, extra, module, monkeypatch, capsys):
    hide(monkeypatch, module)
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"mmscale: error: {command} needs the '{extra}' extra ({module} not "
                                       f"installed): pip install 'mmscale[{extra}]'\n")


def test_require_extra_names_every_missing_module(monkeypatch):
    hide(monkeypatch, "uvicorn", "prometheus_client")
    with pytest.raises(MissingExtra) as err:
        require_extra("serve", "the server")
    assert err.value.modules == ["uvicorn", "prometheus_client"]
    require_extra("report", "the report")  # installed here: no error


CORE_JOBS = """
    import sys
    for name in {hidden!r}:
        sys.modules[name] = None  # as if only `pip install mmscale` had run
    from mmscale.cli import main
    from tests.train.conftest import TINY_OVERRIDES
    out = {out!r}
    assert main(["data", "synth", "--n", "24", "--out", out + "/data"]) == 0
    assert main(["data", "check", out + "/data/train.jsonl"]) == 0
    overrides = [o for o in TINY_OVERRIDES if not o.startswith("train.trackers")]
    assert main(["train", "--preset", "tiny", "--no-progress", *overrides, "train.steps=2",
                 "data.path=" + out + "/data", "train.out_dir=" + out + "/train"]) == 0
"""


@pytest.mark.slow
def test_data_and_train_run_without_any_extra(tmp_path):
    hidden = sorted({m for modules in EXTRA_MODULES.values() for m in modules} | {"starlette", "httptools", "uvloop"})
    code = textwrap.dedent(CORE_JOBS.format(hidden=hidden, out=str(tmp_path)))
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "no TensorBoard events" in run.stderr and "pip install 'mmscale[tensorboard]'" in run.stderr


def test_validate_without_serve_or_report_says_what_each_part_needs(monkeypatch):
    from mmscale.report.html import chart_block
    from mmscale.validate.sections import run_load_section

    hide(monkeypatch, "aiohttp", "matplotlib")
    section = run_load_section(ctx=None)
    assert section["status"] == "unavailable" and "aiohttp" in section["reason"]
    assert "pip install 'mmscale[serve]'" in section["reason"]
    block = chart_block({"id": "loss", "title": "loss"})
    assert "not drawn: matplotlib is not installed" in block and "mmscale[report]" in block
