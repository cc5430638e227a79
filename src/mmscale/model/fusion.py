"""Cross-attention fusion of image tokens (queries) with text tokens (keys/values).

Every entry of ``FUSIONS`` is built as ``cls(image_dim, text_dim, cfg)`` and called as
``fusion(image_tokens [B,Ni,Di], text_tokens [B,Nt,Dt], text_mask [B,Nt]) -> fused_tokens [B,Ni,H]``,
or with ``text_index [P]`` (long): P image rows, row p fused with text ``text_index[p]`` of T
texts. ITM pairs each caption with up to three images; the index lets ``fused`` project each
text once instead of once per pair (the reference gathers the texts first, as a user would).

- ``reference``: the seed article's ``MultimodalFusion``, kept as the baseline. It runs
  ``nn.MultiheadAttention`` in sequence-first layout (two transposes per call) and ignores the
  text padding mask, so padding tokens receive attention: a correctness bug kept on purpose so
  the baseline stays what users would write.
- ``fused``: the same function batch-first through ``F.scaled_dot_product_attention``, honouring
  the padding mask. Its parameter names match ``reference`` (``image_proj``, ``text_proj``,
  ``cross_attention.in_proj_weight`` ...), so one state dict loads into both, which is how the
  equivalence test shares weights. ``fusion_layers=L>0`` stacks L pre-norm blocks instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmscale.model.config import MLP_RATIO, ModelConfig


class ReferenceFusion(nn.Module):
    """The seed's design, verbatim apart from taking its sizes from the config."""

    def __init__(self, image_dim: int, text_dim: int, cfg: ModelConfig):
        super().__init__()
        hidden_dim = cfg.hidden_dim
        self.image_proj = nn.Linear(image_dim, hidden_dim)
        self.text_proj = nn.Linear(text_dim, hidden_dim)
        self.cross_attention = nn.MultiheadAttention(hidden_dim, num_heads=cfg.num_heads)

    def forward(self, image_tokens, text_tokens, text_mask=None, text_index=None):
        # text_mask is accepted for the shared signature and ignored, as in the seed.
        if text_index is not None:
            text_tokens = text_tokens[text_index]
        img_embed = self.image_proj(image_tokens)
        txt_embed = self.text_proj(text_tokens)
        fused, _ = self.cross_attention(
            img_embed.transpose(0, 1), txt_embed.transpose(0, 1), txt_embed.transpose(0, 1)
        )  # (Ni, B, H): nn.MultiheadAttention's default sequence-first layout
        return fused.transpose(0, 1)


def key_padding_bias(text_mask: torch.Tensor | None) -> torch.Tensor | None:
    """[B,Nt] 1=token/0=pad -> bool [B,1,1,Nt] (True = attend) for SDPA, or None if no padding.

    Position 0 ([CLS]) is always attendable so a row of all padding cannot produce NaN.
    """
    if text_mask is None:
        return None
    keep = text_mask.bool().clone()
    keep[:, 0] = True
    return keep[:, None, None, :]


class CrossAttention(nn.Module):
    """Multi-head cross-attention, batch-first, with ``nn.MultiheadAttention``'s parameter layout."""

    def __init__(self, hidden_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * hidden_dim, hidden_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * hidden_dim))
        self.out_proj = nn.Linear(hidden_dim, hidden_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)  # same init as nn.MultiheadAttention
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, queries, keys_values, attend=None, kv_index=None):
        """queries (B, Ni, H); keys_values (B, Nt, H), or (T, Nt, H) with ``kv_index`` (B,) naming
        each query row's text: K and V are projected once per text, then gathered."""
        batch, n_q, hidden = queries.shape
        n_kv = keys_values.shape[1]
        heads = self.num_heads
        w_q, w_kv = self.in_proj_weight.split([hidden, 2 * hidden])
        b_q, b_kv = self.in_proj_bias.split([hidden, 2 * hidden])
        q = F.linear(queries, w_q, b_q).view(batch, n_q, heads, -1).transpose(1, 2)  # (B, h, Ni, d)
        kv = F.linear(keys_values, w_kv, b_kv)  # (B or T, Nt, 2H)
        if kv_index is not None:
            kv = kv[kv_index]
            attend = attend[kv_index] if attend is not None else None
        k, v = kv.view(batch, n_kv, 2, heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0
        )  # (B, h, Ni, d)
        return self.out_proj(out.transpose(1, 2).reshape(batch, n_q, hidden))


class FusionBlock(nn.Module):
    """Pre-norm residual block: x + CrossAttn(LN(x), LN_kv(text)); x + MLP(LN(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = cfg.hidden_dim
        self.norm_q = nn.LayerNorm(hidden)
        self.norm_kv = nn.LayerNorm(hidden)
        self.cross_attention = CrossAttention(hidden, cfg.num_heads, cfg.dropout)
        self.norm_mlp = nn.LayerNorm(hidden)
        mlp_dim = int(hidden * MLP_RATIO)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, hidden), nn.Dropout(cfg.dropout)
        )

    def forward(self, x, text, attend, text_index=None):
        x = x + self.cross_attention(self.norm_q(x), self.norm_kv(text), attend, text_index)
        return x + self.mlp(self.norm_mlp(x))


class FusedFusion(nn.Module):
    """Batch-first SDPA cross-attention that honours the padding mask; optional stacked blocks."""

    def __init__(self, image_dim: int, text_dim: int, cfg: ModelConfig):
        super().__init__()
        self.image_proj = nn.Linear(image_dim, cfg.hidden_dim)
        self.text_proj = nn.Linear(text_dim, cfg.hidden_dim)
        if cfg.fusion_layers == 0:
            self.cross_attention = CrossAttention(cfg.hidden_dim, cfg.num_heads)
            self.blocks = None
        else:
            self.blocks = nn.ModuleList(FusionBlock(cfg) for _ in range(cfg.fusion_layers))
            self.norm = nn.LayerNorm(cfg.hidden_dim)

    def forward(self, image_tokens, text_tokens, text_mask=None, text_index=None):
        x = self.image_proj(image_tokens)  # (B, Ni, H)
        text = self.text_proj(text_tokens)  # (B, Nt, H), or (T, Nt, H): once per text
        attend = key_padding_bias(text_mask)
        if self.blocks is None:
            return self.cross_attention(x, text, attend, text_index)
        for block in self.blocks:
            x = block(x, text, attend, text_index)
        return self.norm(x)


FUSIONS: dict[str, type[nn.Module]] = {"reference": ReferenceFusion, "fused": FusedFusion}


def build_fusion(image_dim: int, text_dim: int, cfg: ModelConfig) -> nn.Module:
    return FUSIONS[cfg.fusion](image_dim, text_dim, cfg)
