"""The config loader: layering, type checks and field-naming errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mmscale.config.load import build, load_config, list_presets, parse_override
from mmscale.errors import ConfigError


@dataclass
class Inner:
    heads: int = 8
    hidden: int = 768  # must be divisible by heads

    def validate(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError("model.hidden", f"{self.hidden} is not divisible by heads={self.heads}")


@dataclass
class Job:
    name: str = "x"
    lr: float = 1e-3
    precision: Literal["fp32", "bf16"] = "bf16"
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    path: str | None = None
    model: Inner = field(default_factory=Inner)


def test_defaults_and_overrides_layer(tmp_path):
    file = tmp_path / "job.toml"
    file.write_text('name = "from-file"\nlr = 2\n[model]\nheads = 4\n')
    job = load_config(Job, file=file, overrides=["model.hidden=64", "sizes=[3, 5]", "path=data/x"])
    assert job.name == "from-file"
    assert job.lr == 2.0 and isinstance(job.lr, float)
    assert (job.model.heads, job.model.hidden) == (4, 64)
    assert job.sizes == [3, 5]
    assert job.path == "data/x"


def test_unknown_key_names_the_dotted_field():
    with pytest.raises(ConfigError) as err:
        build(Job, {"model": {"head": 4}})
    assert err.value.field == "model.head"
    assert "heads" in str(err.value)  # lists the known keys


@pytest.mark.parametrize(
    "raw, field_name",
    [
        ({"lr": "fast"}, "lr"),
        ({"model": {"heads": True}}, "model.heads"),
        ({"precision": "fp8"}, "precision"),
        ({"sizes": [1, "two"]}, "sizes[1]"),
        ({"model": 3}, "model"),
    ],
)
def test_wrong_types_name_the_field(raw, field_name):
    with pytest.raises(ConfigError) as err:
        build(Job, raw)
    assert err.value.field == field_name


def test_validate_runs_after_build():
    with pytest.raises(ConfigError, match="not divisible"):
        build(Job, {"model": {"hidden": 100, "heads": 8}})


def test_override_parsing():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=bf16") == (["a"], "bf16")
    assert parse_override("a=[1,2]") == (["a"], [1, 2])
    assert parse_override("a=[data, pipeline]") == (["a"], ["data", "pipeline"])  # unquoted, as a shell passes it
    assert parse_override("a=[]") == (["a"], [])
    with pytest.raises(ConfigError):
        parse_override("novalue")


def test_missing_file_and_unknown_preset(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Job, file=tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(Job, preset="does-not-exist")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Job, file=bad)


def test_presets_are_listed():
    assert isinstance(list_presets(), list)
