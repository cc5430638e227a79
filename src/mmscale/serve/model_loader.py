"""Build the served model: random-init weights of a preset, or a training checkpoint's weights."""

from __future__ import annotations

import dataclasses
import logging

import torch

from mmscale.config.load import build, load_config
from mmscale.errors import CheckpointError, ConfigError
from mmscale.model import ModelConfig, MultimodalModel
from mmscale.train import sharded_checkpoint
from mmscale.train.checkpoint import load_checkpoint

log = logging.getLogger(__name__)


def load_model(checkpoint: str | None = None, preset: str | None = None,
               overrides: tuple[str, ...] | list[str] = ()) -> tuple[MultimodalModel, ModelConfig]:
    """``checkpoint`` (its saved ``model_config`` and weights) or ``preset`` (random init), in eval mode."""
    if checkpoint:
        # checkpoint.pt of one process, or the checkpoint/ folder of a torchrun job (its shards joined)
        sharded = sharded_checkpoint.is_sharded_checkpoint(checkpoint)
        state = sharded_checkpoint.load_weights(checkpoint) if sharded else load_checkpoint(checkpoint)
        if "model" not in state or "model_config" not in state:
            raise CheckpointError(checkpoint, "holds no 'model' weights or 'model_config'")
        cfg = build(ModelConfig, _known_keys(checkpoint, state["model_config"]), prefix="model")
        model = MultimodalModel(cfg)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:  # torch lists each mismatch on its own line after a header
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = "; ".join(lines[1:4] or lines[:1]) + ("; ..." if len(lines) > 4 else "")
            raise CheckpointError(checkpoint, f"weights do not fit the saved config: {detail}") from None
        log.info("loaded %s (step %s)", checkpoint, state.get("step"))
    elif preset:
        cfg = load_config(ModelConfig, preset=preset, overrides=list(overrides), section="model")
        torch.manual_seed(0)  # random init, but the same weights every start
        model = MultimodalModel(cfg)
    else:
        raise ConfigError("serve.model", "give --checkpoint PATH or --preset NAME")
    return model.eval().requires_grad_(False), cfg


def _known_keys(checkpoint: str, saved: dict) -> dict:
    """The saved ``model_config`` without the keys ``ModelConfig`` no longer has (an earlier build's
    ``vocab_size``, say), so an older checkpoint still loads; its weights are checked as they load."""
    if not isinstance(saved, dict):
        return saved  # build() names what is wrong with it
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    dropped = sorted(k for k in saved if k not in known)
    if dropped:
        log.info("%s: ignoring saved model_config keys this version does not have: %s", checkpoint, ", ".join(dropped))
    return {k: v for k, v in saved.items() if k in known}
