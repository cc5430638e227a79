"""Every config key with its type, value, default and the comment that explains it.

Why: the config dataclasses carry one docstring per field (what the key does, its trade-off, the
measurement behind its default), but Python keeps no attribute docstrings at run time, so they
were readable only in the source. ``describe`` reads them back from the class source with ``ast``
and pairs them with the values a preset, file and overrides give, for ``mmscale config``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConfigKey:
    key: str
    """Dotted name as overrides spell it, e.g. ``train.ddp_bucket_mb``."""
    type: str
    """The annotation as the source writes it, e.g. ``int | None``."""
    value: Any
    """What the loaded config holds."""
    default: Any
    """The dataclass default, before any preset, file or override."""
    doc: str
    """The field's docstring, or "" when it has none."""

    @property
    def changed(self) -> bool:
        return self.value != self.default

    def as_dict(self) -> dict:
        return {"key": self.key, "type": self.type, "value": self.value, "default": self.default,
                "doc": self.doc}


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the string literal right after its annotated assignment in ``cls``'s body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen build): keys are still listed, without docs
        return {}
    body = ast.parse(source).body[0].body
    docs = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def describe(obj: Any, prefix: str) -> list[ConfigKey]:
    """The keys of config dataclass ``obj`` under ``prefix``, nested tables flattened in order."""
    cls = type(obj)
    docs = field_docs(cls)
    keys: list[ConfigKey] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(value):
            keys += describe(value, name)
            continue
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", repr(f.type))
        keys.append(ConfigKey(name, annotation, value, field_default(f), docs.get(f.name, "")))
    return keys


def select(keys: list[ConfigKey], prefixes: list[str]) -> list[ConfigKey]:
    """The keys each of ``prefixes`` names: the key itself when one is spelled out in full; else
    the table it names (``validate.data`` -> ``validate.data.*``, not ``validate.datascale.*``);
    else every key that starts with it (``train.ddp`` finds ``train.ddp_bucket_mb``). All when none."""
    if not prefixes:
        return keys
    names = {k.key for k in keys}

    def matcher(prefix: str):
        if prefix in names:
            return lambda key: key == prefix
        if any(name.startswith(prefix + ".") for name in names):
            return lambda key: key.startswith(prefix + ".")
        return lambda key: key.startswith(prefix)

    wanted = [matcher(p) for p in prefixes]
    return [k for k in keys if any(match(k.key) for match in wanted)]


def toml_value(value: Any) -> str:
    """A value as an override would spell it (``unset`` for None, which TOML cannot write)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)
