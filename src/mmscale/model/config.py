"""The model's sizes and choices, as plain data so configs stay serializable.

Class choices are stored as names (``fusion="fused"``, ``text_encoder="minilm"``) and resolved
by the model; ``validate()`` names the field that is wrong before any weight is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmscale.errors import ConfigError

# Sizes of the transformers BERT variants built from config. "minilm" takes its sizes from the
# pretrained package's config.json instead (6 layers, 384 hidden, 12 heads).
TEXT_ENCODER_SIZES = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
}
TEXT_ENCODERS = ("bert-base", "bert-tiny", "minilm")
MLP_RATIO = 4.0  # MLP width over hidden_dim in stacked fusion blocks (BLIP/ALBEF)
TEMPERATURE_INIT = 0.07  # initial ITC softmax temperature (CLIP), learned from there
VOCAB_SIZE = 30522
"""The BERT-uncased WordPiece vocabulary mmscale ships and the MiniLM weights use."""


@dataclass
class ModelConfig:
    image_encoder: str = "vit_base_patch16_224"
    """timm model name; built with ``pretrained=False`` (random init, nothing downloaded)."""
    image_size: int = 224
    """Input image side in pixels; must match ``data.image_size``."""
    image_patch_size: int = 0
    """Override of the ViT patch side in pixels (0 keeps the timm default)."""
    patch_embed: Literal["conv", "matmul"] = "matmul"
    """The ViT patch embedding: ``conv`` as timm builds it, or ``matmul``, the same function and
    parameters as one matmul over the cut-out patches (faster on GPUs than cuDNN's 3-channel conv)."""
    image_depth: int = 0
    """Override of the number of ViT blocks (0 keeps the timm default)."""
    text_encoder: Literal["bert-base", "bert-tiny", "minilm"] = "bert-base"
    """``bert-base``/``bert-tiny``: transformers BERT from config, random init; ``minilm``: the
    pretrained all-MiniLM-L6-v2 weights from the installed package (offline)."""
    max_text_len: int = 128
    """Longest caption in tokens, [CLS] and [SEP] included."""
    fusion: Literal["reference", "fused"] = "fused"
    """Cross-attention implementation, a name in ``mmscale.model.fusion.FUSIONS``."""
    fusion_layers: int = 0
    """0: one bare cross-attention (the reference design's function); L>0: L stacked pre-norm
    blocks with residual, cross-attention and MLP (BLIP/ALBEF style). ``fused`` only."""
    hidden_dim: int = 768
    """Width of the fused tokens (both modalities are projected to it)."""
    num_heads: int = 8
    """Cross-attention heads (the reference design hard-codes 8)."""
    embed_dim: int = 256
    """Width of the normalized ITC embeddings (image_embedding / text_embedding)."""
    itm_weight: float = 1.0
    """Weight of the image-text matching loss, added to the contrastive loss (0 skips the fusion branch)."""
    dropout: float = 0.0
    """Dropout inside the text encoder and fusion blocks (0 makes CPU runs deterministic)."""
    gelu: Literal["erf", "erf_poly"] = "erf_poly"
    """The exact (erf) GELU: ``erf`` is torch's; ``erf_poly`` computes erf by a rational polynomial
    (|error| <= 1.5e-7) where the model is compiled, whose kernels are memory-bound, not arithmetic-bound."""

    def validate(self) -> None:
        positive = ("image_size", "max_text_len", "hidden_dim", "num_heads", "embed_dim")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name}", f"must be > 0, got {getattr(self, name)}")
        for name in ("image_patch_size", "image_depth", "fusion_layers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}", f"must be >= 0, got {getattr(self, name)}")
        if self.hidden_dim % self.num_heads:
            raise ConfigError(
                "model.hidden_dim",
                f"{self.hidden_dim} is not divisible by model.num_heads={self.num_heads}",
            )
        if self.image_patch_size and self.image_size % self.image_patch_size:
            raise ConfigError(
                "model.image_size",
                f"{self.image_size} is not divisible by model.image_patch_size={self.image_patch_size}",
            )
        if self.fusion == "reference" and self.fusion_layers:
            raise ConfigError(
                "model.fusion_layers",
                "the reference fusion is the seed's single cross-attention; use fusion_layers=0 "
                "or fusion='fused'",
            )
        if self.max_text_len > 512:
            raise ConfigError("model.max_text_len", f"BERT position table holds 512, got {self.max_text_len}")
        if self.itm_weight < 0:
            raise ConfigError("model.itm_weight", f"must be >= 0, got {self.itm_weight}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout", f"must be in [0, 1), got {self.dropout}")
