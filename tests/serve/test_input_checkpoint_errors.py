"""A corrupt checkpoint (as ``mmscale serve --checkpoint`` and ``train --resume`` load it) is reported
with the loader's reason whole: a sentence, or words cut at a boundary, never a word cut in two."""

import re

import pytest
import torch

from mmscale.errors import CheckpointError
from mmscale.train.checkpoint import load_checkpoint, save_checkpoint


def reason_of(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "truncated or corrupt" in message and "\n" not in message
    return re.search(r"truncated or corrupt \((.*)\); delete it", message).group(1)


def test_garbage_checkpoint_reason_is_not_cut_mid_word(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"garbage" * 10)
    reason = reason_of(path)
    assert "torch.load fr" not in reason and not reason.endswith(" fr")
    assert reason.startswith("UnpicklingError: Weights only load failed")
    assert "Unsupported operand" in reason  # torch's actual reason, from past its advice


def test_truncated_checkpoint_reason_is_a_whole_sentence(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1, "w": torch.zeros(1000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    reason = reason_of(path)
    assert reason.endswith("failed finding central directory.")  # whole, not "If yo"
    assert "If yo" not in reason


def test_long_reason_is_cut_at_a_word_boundary():
    from mmscale.train.checkpoint import _first_words

    words = " ".join(f"word{i:03d}" for i in range(60))  # one long line, no sentence end
    text = _first_words(RuntimeError(words))
    assert text.endswith(" ...") and len(text) <= 170
    assert all(re.fullmatch(r"word\d{3}", w) for w in text[:-4].split())


def test_missing_checkpoint_message_names_what_train_writes(tmp_path):
    with pytest.raises(CheckpointError, match="not found.*mmscale train writes checkpoint.pt in train.out_dir"):
        load_checkpoint(tmp_path / "nope.pt")


def test_weights_that_do_not_fit_name_each_mismatch(tmp_path):
    import dataclasses

    import pytest
    import torch

    from mmscale.config.load import load_config
    from mmscale.errors import CheckpointError
    from mmscale.model import ModelConfig, MultimodalModel
    from mmscale.serve.model_loader import load_model
    from mmscale.train.checkpoint import save_checkpoint

    cfg = load_config(ModelConfig, preset="tiny", section="model")
    state = MultimodalModel(cfg).state_dict()
    state.pop("itm_head.weight")
    state["itm_head.bias"] = torch.zeros(3)
    path = save_checkpoint(tmp_path / "checkpoint.pt", {"model": state, "model_config": dataclasses.asdict(cfg),
                                                        "step": 1})
    with pytest.raises(CheckpointError) as err:
        load_model(str(path), None, [])
    message = str(err.value)
    assert 'Missing key(s) in state_dict: "itm_head.weight"' in message and "size mismatch for itm_head.bias" in message


def test_checkpoint_of_an_earlier_build_loads_without_its_removed_keys(tmp_path, caplog):
    """Checkpoints written before ``model.vocab_size`` was removed carry it in ``model_config``."""
    import dataclasses
    import logging

    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig, MultimodalModel
    from mmscale.model.config import VOCAB_SIZE
    from mmscale.serve.model_loader import load_model

    cfg = load_config(ModelConfig, preset="tiny", section="model")
    state = MultimodalModel(cfg).state_dict()
    saved = {**dataclasses.asdict(cfg), "vocab_size": VOCAB_SIZE}
    path = save_checkpoint(tmp_path / "checkpoint.pt", {"model": state, "model_config": saved, "step": 1})
    with caplog.at_level(logging.INFO, logger="mmscale.serve.model_loader"):
        model, loaded = load_model(str(path), None, [])
    assert loaded == cfg
    assert torch.equal(model.state_dict()["itm_head.weight"], state["itm_head.weight"])
    notes = [r.getMessage() for r in caplog.records if "vocab_size" in r.getMessage()]
    assert len(notes) == 1 and "ignoring saved model_config keys" in notes[0]
