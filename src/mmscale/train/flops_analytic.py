"""FLOPs of one training step written out from the model's sizes: a check on the counted figure.

``mmscale.train.flops`` counts FLOPs by running the model under ``FlopCounterMode``; this module
derives them on paper, matmul by matmul, so the two can be compared (a counter that missed a
kernel, or a model that grew an extra pass, shows up as a ratio away from 1). Only matmuls and
convolutions count, 2 * m * n * k each, as in every MFU figure; norms, softmax and activations do
not. Per sample and per training step:

- image encoder (ViT): patch embedding (a p x p stride-p convolution = a matmul of the
  3*p*p patch pixels by the width), then per layer QKV (3 d^2), output projection (d^2),
  MLP (2 d * mlp), attention scores QK^T and values AV (n^2 d each): 24 n d^2 + 4 n^2 d at mlp = 4d;
- text encoder (BERT): the same layer formula over the caption tokens (embeddings are lookups);
- fusion: image and text projections to the hidden width, then one cross-attention (Q from the
  image tokens, K and V from the text tokens) or ``fusion_layers`` blocks that add an MLP; ITM
  runs it on 3 pairs per sample (the positive and two hard negatives) when the batch has >= 2
  (ours: one query per pair, text projections and K/V once per text);
- heads: ITC projections of the two [CLS] tokens, the B x B similarity (twice: once for the loss,
  once without gradient to draw hard negatives), the ITM head on the fused [CLS] token.

Backward costs twice the forward for a matmul (one product for the input's gradient, one for the
weight's), except where the input needs no gradient: the patch embedding (pixels) computes only
its weight's (1x), and the hard-negative similarity is never differentiated (0x). Fused SDPA
kernels also recompute QK^T in backward (0.5x the attention forward): kept apart as ``recompute``,
since ``FlopCounterMode`` counts it and model FLOPs do not. On the ``base`` preset at batch 128 the
formula gives 183.24 GFLOP/sample of model FLOPs and 184.37 with the recompute, equal to the
counted figure on an H100 (``benchmarks/gpu_crosscheck.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmscale.errors import ConfigError
from mmscale.model.config import MLP_RATIO, TEXT_ENCODER_SIZES, ModelConfig

# timm ViT widths, depths, MLP widths and patch sides (ViT paper, Dosovitskiy et al. 2021, table 1;
# Tiny/Small from DeiT, Touvron et al. 2021). ``model.image_depth`` / ``image_patch_size`` override.
VIT_SIZES: dict[str, dict] = {
    "vit_tiny_patch16_224": dict(width=192, layers=12, mlp_width=768, patch=16),
    "vit_small_patch16_224": dict(width=384, layers=12, mlp_width=1536, patch=16),
    "vit_base_patch16_224": dict(width=768, layers=12, mlp_width=3072, patch=16),
    "vit_base_patch32_224": dict(width=768, layers=12, mlp_width=3072, patch=32),
    "vit_large_patch16_224": dict(width=1024, layers=24, mlp_width=4096, patch=16),
}
# all-MiniLM-L6-v2's config.json: 6 layers of width 384, intermediate 1536.
MINILM_SIZES = dict(hidden_size=384, num_hidden_layers=6, intermediate_size=1536)


def matmul_flops(m: int, n: int, k: int) -> int:
    """(m x k) @ (k x n): m * n dot products of length k, a multiply and an add each."""
    return 2 * m * n * k


@dataclass(frozen=True)
class EncoderSizes:
    """A pre-norm transformer encoder: ``tokens`` per sample, ``layers`` of ``width``."""

    tokens: int
    width: int
    layers: int
    mlp_width: int


def attention_flops(q_tokens: int, kv_tokens: int, width: int) -> int:
    """Forward FLOPs of QK^T and softmax(QK^T) V for one sample, summed over heads (h * 2 n m d/h)."""
    return matmul_flops(q_tokens, kv_tokens, width) + matmul_flops(q_tokens, width, kv_tokens)


def encoder_layer_linear_flops(tokens: int, width: int, mlp_width: int) -> int:
    """Forward FLOPs of one layer's weight matmuls for one sample: QKV, output projection, MLP."""
    n, d = tokens, width
    return (matmul_flops(n, 3 * d, d) + matmul_flops(n, d, d)
            + matmul_flops(n, mlp_width, d) + matmul_flops(n, d, mlp_width))


def encoder_layer_flops(tokens: int, width: int, mlp_width: int) -> int:
    """Forward FLOPs of one self-attention layer for one sample (24 n d^2 + 4 n^2 d at mlp = 4d)."""
    return encoder_layer_linear_flops(tokens, width, mlp_width) + attention_flops(tokens, tokens, width)


def cross_attention_linear_flops(q_tokens: int, kv_tokens: int, width: int) -> int:
    """Forward FLOPs of a cross-attention's projections: Q from queries, K and V, output."""
    return (matmul_flops(q_tokens, width, width) + matmul_flops(kv_tokens, 2 * width, width)
            + matmul_flops(q_tokens, width, width))


@dataclass
class PartFlops:
    """One part of the step, FLOPs for the whole batch.

    ``recompute``: extra backward FLOPs of a fused attention kernel (flash / memory-efficient /
    cuDNN SDPA) that recomputes QK^T instead of storing it, 0.5x the attention forward.
    ``FlopCounterMode`` counts it (its SDPA backward formula has five products, not four); model
    FLOPs, the MFU convention, do not.
    """

    forward: int
    backward: int
    recompute: int = 0

    @property
    def total(self) -> int:
        return self.forward + self.backward


@dataclass
class StepFlops:
    """FLOPs of one training step (forward + backward) by part, for ``batch`` samples."""

    batch: int
    parts: dict[str, PartFlops] = field(default_factory=dict)

    def add(self, name: str, forward: int, backward_factor: int = 2, recompute: bool = False) -> None:
        self.parts[name] = PartFlops(forward, backward_factor * forward, forward // 2 if recompute else 0)

    @property
    def forward(self) -> int:
        return sum(p.forward for p in self.parts.values())

    @property
    def total(self) -> int:
        """Model FLOPs: forward + backward, no recomputation (what MFU divides)."""
        return sum(p.total for p in self.parts.values())

    @property
    def total_with_recompute(self) -> int:
        """What ``FlopCounterMode`` should count: model FLOPs + fused attention's recompute."""
        return self.total + sum(p.recompute for p in self.parts.values())

    @property
    def per_sample(self) -> float:
        return self.total / self.batch

    def as_dict(self) -> dict:
        return {
            "batch": self.batch,
            "total_flops": self.total,
            "total_with_recompute_flops": self.total_with_recompute,
            "forward_flops": self.forward,
            "gflops_per_sample": self.per_sample / 1e9,
            "gflops_per_sample_with_recompute": self.total_with_recompute / self.batch / 1e9,
            "parts_gflops_per_sample": {
                name: {"forward": p.forward / self.batch / 1e9, "backward": p.backward / self.batch / 1e9,
                       "recompute": p.recompute / self.batch / 1e9}
                for name, p in self.parts.items()
            },
        }


def image_sizes(cfg: ModelConfig) -> tuple[EncoderSizes, int]:
    """(ViT sizes, patch side in pixels) from the config and the table of timm ViTs."""
    if cfg.image_encoder not in VIT_SIZES:
        raise ConfigError("model.image_encoder",
                          f"no analytic FLOP formula for '{cfg.image_encoder}' "
                          f"(known: {', '.join(VIT_SIZES)})")
    vit = VIT_SIZES[cfg.image_encoder]
    patch = cfg.image_patch_size or vit["patch"]
    if cfg.image_size % patch:
        raise ConfigError("model.image_size", f"{cfg.image_size} is not divisible by the patch side {patch}")
    tokens = (cfg.image_size // patch) ** 2 + 1  # patches + [CLS]
    layers = cfg.image_depth or vit["layers"]
    return EncoderSizes(tokens, vit["width"], layers, vit["mlp_width"]), patch


def text_sizes(cfg: ModelConfig) -> EncoderSizes:
    sizes = MINILM_SIZES if cfg.text_encoder == "minilm" else TEXT_ENCODER_SIZES.get(cfg.text_encoder)
    if sizes is None:
        raise ConfigError("model.text_encoder", f"no analytic FLOP formula for '{cfg.text_encoder}'")
    return EncoderSizes(cfg.max_text_len, sizes["hidden_size"], sizes["num_hidden_layers"],
                        sizes["intermediate_size"])


def train_step_flops(cfg: ModelConfig, batch: int, fused_attention: bool = True) -> StepFlops:
    """Matmul FLOPs of forward + backward of ``MultimodalModel(cfg)`` on ``batch`` samples.

    ``fused_attention``: the encoders run SDPA's fused kernels (timm ``fused_attn`` and
    transformers ``sdpa``, the defaults), so their attention backward recomputes QK^T. The
    ``fused`` fusion calls SDPA too; the ``reference`` fusion's ``nn.MultiheadAttention`` returns
    its attention weights, which takes the unfused path (plain batched matmuls, no recompute).
    """
    if batch < 1:
        raise ConfigError("batch", f"must be >= 1, got {batch}")
    image, patch = image_sizes(cfg)
    text = text_sizes(cfg)
    hidden, embed = cfg.hidden_dim, cfg.embed_dim
    b = batch
    step = StepFlops(batch)
    # patch embedding: (n-1) patches of 3*p*p pixels -> width; pixels need no gradient
    step.add("image_patch_embed", b * matmul_flops(image.tokens - 1, image.width, 3 * patch * patch),
             backward_factor=1)
    for name, enc in (("image", image), ("text", text)):
        step.add(f"{name}_linear", b * enc.layers * encoder_layer_linear_flops(enc.tokens, enc.width, enc.mlp_width))
        step.add(f"{name}_attention", b * enc.layers * attention_flops(enc.tokens, enc.tokens, enc.width),
                 recompute=fused_attention)
    step.add("itc_heads", b * (matmul_flops(1, embed, image.width) + matmul_flops(1, embed, text.width)))
    step.add("itc_similarity", matmul_flops(b, b, embed))
    pairs = 3 * b if cfg.itm_weight > 0 and b >= 2 else 0  # positives + 2 hard negatives per sample
    if pairs:
        step.add("hard_negative_similarity", matmul_flops(b, b, embed), backward_factor=0)
        # ours fuses the [CLS] query only (MultimodalModel.itm_logits) and projects each text once
        # (text_index); the reference fuses every image token and projects the text of every pair
        reference = cfg.fusion == "reference"
        queries = image.tokens if reference else 1
        texts = pairs if reference else b
        step.add("fusion_projections", pairs * matmul_flops(queries, hidden, image.width)
                 + texts * matmul_flops(text.tokens, hidden, text.width))
        layers = max(cfg.fusion_layers, 1)  # fusion_layers=0: one bare cross-attention
        kv = matmul_flops(text.tokens, 2 * hidden, hidden)
        per_pair = cross_attention_linear_flops(queries, text.tokens, hidden) - kv  # Q and output
        if cfg.fusion_layers:
            mlp_width = int(hidden * MLP_RATIO)
            per_pair += matmul_flops(queries, mlp_width, hidden) + matmul_flops(queries, hidden, mlp_width)
        step.add("fusion_linear", layers * (pairs * per_pair + texts * kv))
        step.add("fusion_attention", pairs * layers * attention_flops(queries, text.tokens, hidden),
                 recompute=cfg.fusion == "fused")
        step.add("itm_head", pairs * matmul_flops(1, 2, hidden))
    return step
