"""The image+text model: two encoders, a cross-attention fusion, ITC and ITM heads.

Single-device math only: DDP/FSDP, torch.compile, activation checkpointing and autocast are
applied from ``mmscale.train``. Submodules are named ``image_encoder``, ``text_encoder`` and
``fusion`` so stage timers can hook them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mmscale.model import losses
from mmscale.model.config import TEMPERATURE_INIT, ModelConfig
from mmscale.model.encoders import ImageEncoder, TextEncoder
from mmscale.model.fusion import build_fusion
from mmscale.model.gelu import use_erf_poly_gelu

MAX_LOGIT_SCALE = 100.0  # CLIP's clamp on 1/temperature


class MultimodalModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.image_encoder = ImageEncoder(cfg)
        self.text_encoder = TextEncoder(cfg)
        self.fusion = build_fusion(self.image_encoder.width, self.text_encoder.width, cfg)
        self.image_head = nn.Linear(self.image_encoder.width, cfg.embed_dim)  # ITC projection
        self.text_head = nn.Linear(self.text_encoder.width, cfg.embed_dim)
        self.itm_head = nn.Linear(cfg.hidden_dim, 2)
        # shape (1,), not a scalar: FSDP2 cannot shard 0-d parameters
        self.logit_scale = nn.Parameter(torch.tensor([math.log(1.0 / TEMPERATURE_INIT)]))
        if cfg.gelu == "erf_poly":
            use_erf_poly_gelu(self)
        # (image_emb, text_emb) -> ContrastRows: the rows ITC contrasts with beyond this batch.
        # None: this batch alone. The trainer sets it under torchrun (mmscale.train.contrastive).
        self.gather_contrast_rows: Callable[[torch.Tensor, torch.Tensor], losses.ContrastRows] | None = None

    # --- public pieces -------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float -> image_tokens (B, Ni, Di), [CLS] first."""
        return self.image_encoder(pixels)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, Nt) token ids + attention mask -> text_tokens (B, Nt, Dt), [CLS] first."""
        return self.text_encoder(ids, mask)

    def fuse(self, image_tokens, text_tokens, text_mask, text_index=None) -> torch.Tensor:
        """-> fused_tokens (B, Ni, H): image tokens that attended to the caption (row b to text
        ``text_index[b]`` of the T given, when an index is given)."""
        return self.fusion(image_tokens, text_tokens, text_mask, text_index)

    def embed_image_tokens(self, image_tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(image_tokens[:, 0]), dim=-1)

    def embed_text_tokens(self, text_tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(text_tokens[:, 0]), dim=-1)

    def image_embedding(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim), L2-normalized: for ITC, retrieval and serving."""
        return self.embed_image_tokens(self.encode_image(pixels))

    def text_embedding(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim), L2-normalized."""
        return self.embed_text_tokens(self.encode_text(ids, mask))

    def itm_logits(self, image_tokens, text_tokens, text_mask, text_index=None) -> torch.Tensor:
        """(B, 2) match logits from the fused token at the [CLS] position (index 1 = match).

        The fusion has no attention among image tokens (each query attends to the text alone,
        then its own MLP), so the fused [CLS] row depends on the [CLS] query only: ours fuses that
        one query instead of all Ni, the same logits for 1/Ni of the query-side work. The
        ``reference`` design fuses every token, as the seed does.
        """
        fused = self.fuse(self.itm_queries(image_tokens), text_tokens, text_mask, text_index)
        return self.itm_head(fused[:, 0])

    def itm_queries(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """The image tokens ITM fuses: [CLS] alone for ours, all of them for the reference.
        Callers that gather image rows per caption gather these, not every token."""
        return image_tokens if self.cfg.fusion == "reference" else image_tokens[:, :1]

    def scale(self) -> torch.Tensor:
        return self.logit_scale.float().exp().clamp(max=MAX_LOGIT_SCALE).squeeze(0)

    # --- training objective ---------------------------------------------------------------
    def forward(self, pixels, ids, mask) -> dict[str, torch.Tensor]:
        image_tokens = self.encode_image(pixels)
        text_tokens = self.encode_text(ids, mask)
        image_emb = self.embed_image_tokens(image_tokens)
        text_emb = self.embed_text_tokens(text_tokens)
        scale = self.scale()
        rows = self.gather_contrast_rows(image_emb, text_emb) if self.gather_contrast_rows is not None else None
        loss_itc = losses.itc_loss(image_emb, text_emb, scale, rows)
        batch = pixels.shape[0]
        if self.cfg.itm_weight > 0 and batch >= 2:
            # ITM's hard negatives come from this batch only, also when ITC sees other processes'
            # rows: the fusion needs a negative's tokens, and those stay on the process that owns them
            neg_text, neg_image = losses.sample_hard_negatives(image_emb @ text_emb.t())
            # 3B pairs: positives, (image, hard-negative text), (hard-negative image, text);
            # each pair names its image and its text, so every text is projected once
            own = torch.arange(batch, device=pixels.device)
            pair_image = torch.cat([own, own, neg_image])
            pair_text = torch.cat([own, neg_text, own])
            queries = self.itm_queries(image_tokens)[pair_image]
            loss_itm = losses.itm_loss(self.itm_logits(queries, text_tokens, mask, pair_text), batch)
        else:
            loss_itm = torch.zeros((), device=pixels.device)
        loss = loss_itc + self.cfg.itm_weight * loss_itm
        return {"loss": loss, "loss_itc": loss_itc.detach(), "loss_itm": loss_itm.detach()}
