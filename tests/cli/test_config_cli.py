"""``mmscale config``: keys, values under a preset and overrides, and their descriptions."""

import json

import pytest

from mmscale.cli import main


def test_lists_a_key_with_its_preset_value_default_and_description(capsys):
    assert main(["config", "--preset", "tiny", "data.image_size"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("data.image_size = 64  (int; default 224)\n")
    assert "Side of the square model input" in out


def test_an_override_changes_the_value_shown(capsys):
    assert main(["config", "--preset", "base", "--json", "train.compile=false", "train.compile",
                 "serve.max_batch=7", "serve.max_batch"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"train.compile", "serve.max_batch"}
    assert rows["train.compile"]["value"] is False and rows["serve.max_batch"]["value"] == 7


def test_changed_lists_only_what_the_preset_sets(capsys):
    assert main(["config", "--preset", "tiny", "--changed", "--json", "model"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["value"] != r["default"] for r in rows)
    assert {"model.image_encoder", "model.hidden_dim"} <= {r["key"] for r in rows}


def test_nested_validate_tables_are_listed(capsys):
    assert main(["config", "--preset", "gpu", "validate.scaling.per_rank_batch"]) == 0
    assert capsys.readouterr().out.startswith("validate.scaling.per_rank_batch = ")


@pytest.mark.parametrize("args, field", [(["train.no_such"], "train.no_such"),
                                         (["train.batch_size=big"], "train.batch_size")])
def test_unknown_keys_and_bad_values_name_the_field(capsys, args, field):
    assert main(["config", "--preset", "tiny", *args]) == 2
    assert field in capsys.readouterr().err
