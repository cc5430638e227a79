import pytest
import torch

from mmscale.model.config import ModelConfig


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)


def tiny_model_config(**changes) -> ModelConfig:
    """A model small enough for a CPU unit test (ViT 2 blocks at 32 px, 2-layer BERT)."""
    base = dict(
        image_encoder="vit_tiny_patch16_224", image_size=32, image_patch_size=8, image_depth=2,
        text_encoder="bert-tiny", max_text_len=16, hidden_dim=64, num_heads=8,
        embed_dim=32,
    )
    base.update(changes)
    return ModelConfig(**base)
