"""Config keys listed with their docstrings, read back from the dataclass source."""

from __future__ import annotations

from dataclasses import dataclass, field

from mmscale.config.describe import describe, field_docs, select, toml_value


@dataclass
class Inner:
    depth: int = 2
    """How deep."""


@dataclass
class Outer:
    name: str = "a"
    """The name.

    A second paragraph."""
    undocumented: float = 1.0
    inner: Inner = field(default_factory=Inner)
    """A nested table."""
    tags: list[str] = field(default_factory=list)
    """Free labels."""


def test_docs_follow_their_field_and_missing_ones_stay_missing():
    docs = field_docs(Outer)
    assert docs["name"] == "The name.\n\nA second paragraph."
    assert "undocumented" not in docs and docs["tags"] == "Free labels."


def test_nested_tables_flatten_in_order_with_values_and_defaults():
    keys = describe(Outer(name="b", inner=Inner(depth=5)), "t")
    assert [k.key for k in keys] == ["t.name", "t.undocumented", "t.inner.depth", "t.tags"]
    by = {k.key: k for k in keys}
    assert by["t.name"].value == "b" and by["t.name"].default == "a" and by["t.name"].changed
    assert by["t.inner.depth"].doc == "How deep." and by["t.inner.depth"].value == 5
    assert by["t.undocumented"].doc == "" and not by["t.undocumented"].changed
    assert by["t.tags"].type == "list[str]" and by["t.tags"].default == []


def test_select_by_prefix():
    keys = describe(Outer(), "t")
    assert [k.key for k in select(keys, ["t.inner"])] == ["t.inner.depth"]
    assert [k.key for k in select(keys, ["t.na", "t.tags"])] == ["t.name", "t.tags"]
    assert select(keys, []) == keys
    assert [k.key for k in select(describe(Outer(), "t") + describe(Inner(), "t.name_x"), ["t.name"])] == ["t.name"]


def test_values_print_as_overrides_spell_them():
    assert [toml_value(v) for v in (None, True, 'say "hi"', [1, "a"], 2.5)] == [
        "unset", "true", '"say \\"hi\\""', '[1, "a"]', "2.5"]


def test_every_key_of_the_product_is_documented():
    """A key users can set must say what it does: ``mmscale config`` prints this text."""
    from mmscale.cli.config import TABLES, load_keys

    keys = load_keys(None, None, [])
    assert {k.key.split(".")[0] for k in keys} == set(TABLES)
    assert [k.key for k in keys if not k.doc] == []


def test_a_table_name_selects_its_own_keys_not_a_longer_table():
    keys = describe(Inner(), "v.data") + describe(Inner(), "v.datascale")
    assert {k.key for k in select(keys, ["v.data"])} == {k.key for k in describe(Inner(), "v.data")}
    assert {k.key for k in select(keys, ["v.datas"])} == {k.key for k in describe(Inner(), "v.datascale")}
