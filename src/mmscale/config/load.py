"""Build a typed, validated config dataclass from a preset or file plus dotted overrides.

Configs are plain (nested) dataclasses: every field has a default that runs and a docstring
(attribute comment) saying what it holds. A dataclass may define ``validate(self)`` raising
``ConfigError``; it runs after loading, children first. Unknown keys and wrong types fail
before any work, naming the dotted field (``train.batch_size``).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from mmscale.errors import ConfigError

T = TypeVar("T")
PRESET_DIR = Path(__file__).parent / "presets"


def list_presets() -> list[str]:
    """Names of the shipped presets (files in ``config/presets``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def preset_path(name: str) -> Path:
    path = PRESET_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError("preset", f"unknown preset '{name}' (known: {', '.join(list_presets())})")
    return path


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path}: not valid TOML ({exc})") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=3`` -> (["a", "b"], 3). The value is parsed as TOML when it can be, else a string;
    a bracketed list of bare words (``[data,pipeline]``, as shells pass it unquoted) is a list."""
    if "=" not in text:
        raise ConfigError(text, "override must look like key=value (e.g. train.batch_size=64)")
    key, raw = text.split("=", 1)
    return key.strip().split("."), parse_value(raw)


def parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    stripped = raw.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        inner = stripped[1:-1].strip()
        return [parse_value(part.strip()) for part in inner.split(",")] if inner else []
    return raw


def merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    cls: type[T],
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    section: str | None = None,
) -> T:
    """Preset, then file, then overrides, each layered over the dataclass defaults.

    ``section`` picks one table of the TOML (e.g. ``model``) when the file holds several jobs.
    """
    raw: dict = {}
    for source in ([preset_path(preset)] if preset else []) + ([Path(file)] if file else []):
        data = read_toml(source)
        raw = merge(raw, data.get(section, {}) if section else data)
    for text in overrides:
        keys, value = parse_override(text)
        if section and keys[0] == section:
            keys = keys[1:]
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return build(cls, raw, prefix=section or "")


def build(cls: type[T], raw: dict, prefix: str = "") -> T:
    """Instantiate dataclass ``cls`` from ``raw``, checking keys and types, then validate."""
    if not isinstance(raw, dict):
        raise ConfigError(prefix or cls.__name__, f"expected a table, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        name = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise ConfigError(name, f"unknown key (known: {', '.join(sorted(fields))})")
        kwargs[key] = coerce(hints[key], value, name)
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj


def coerce(hint: Any, value: Any, name: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted for floats, nothing else converts."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, prefix=name)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, name)
            except ConfigError as exc:
                errors.append(exc.reason)
        raise ConfigError(name, "; ".join(errors))
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(name, f"expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [coerce(item, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ConfigError(name, f"expected int, got bool {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(name, f"expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def to_dict(obj: Any) -> dict:
    """The resolved config as plain data, for writing beside results."""
    return dataclasses.asdict(obj)
