"""ITC and ITM objectives as pure functions of tensors (no modules, easy to check by hand)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class ContrastRows(NamedTuple):
    """The rows ITC contrasts a batch with when they extend beyond it (other processes' batches)."""

    image: torch.Tensor  # (N, E) every image embedding, this batch's B rows among them
    text: torch.Tensor  # (N, E) every text embedding, in the same order
    valid: torch.Tensor  # (N,) bool: False for padding rows, which are never a negative
    first: int  # where this batch's rows start: row i's positive is row first + i


def itc_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
             rows: ContrastRows | None = None) -> torch.Tensor:
    """Symmetric InfoNCE: mean of image->text and text->image cross-entropy over the batch.

    image_emb, text_emb: (B, E), already L2-normalized; logit_scale: scalar = 1 / temperature.
    Pair i is the positive of row i; every other row of the batch is a negative, and with ``rows``
    every other row of those too (open_clip's local loss: B rows scored against N columns).
    """
    if rows is None:
        logits = (logit_scale * image_emb @ text_emb.t()).float()  # (B, B); softmax in fp32 for bf16 models
        target = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    padding = ~rows.valid
    image_logits = (logit_scale * image_emb @ rows.text.t()).float().masked_fill(padding, float("-inf"))  # (B, N)
    text_logits = (logit_scale * text_emb @ rows.image.t()).float().masked_fill(padding, float("-inf"))
    target = torch.arange(rows.first, rows.first + image_emb.shape[0], device=image_logits.device)
    return 0.5 * (F.cross_entropy(image_logits, target) + F.cross_entropy(text_logits, target))


@torch.no_grad()
def sample_hard_negatives(similarity: torch.Tensor, generator: torch.Generator | None = None):
    """For each image a negative text, for each text a negative image, drawn from in-batch ITC.

    similarity: (B, B) image x text. Negatives are drawn with probability softmax(similarity)
    over the other rows (the diagonal is excluded), so confusable pairs are picked more often
    (ALBEF/BLIP). Returns (neg_text_idx (B,), neg_image_idx (B,)). Needs B >= 2.

    Drawn by the Gumbel-max trick, argmax(similarity + Gumbel noise), which samples exactly that
    softmax: elementwise work and one row-wise argmax that ``torch.compile`` fuses into the step.
    ``torch.multinomial``, used before, has no Inductor lowering and stayed an ATen call inside
    the compiled step. (Its cost was first put at 124 small kernels a step; those turned out to
    be the LayerNorm backward's partial sums, and the change's own speed effect is unmeasured.)
    """
    batch = similarity.shape[0]
    eye = torch.eye(batch, dtype=torch.bool, device=similarity.device)
    sim = similarity.float().masked_fill(eye, float("-inf"))
    neg_text_idx = (sim + _gumbel(sim, generator)).argmax(dim=1)
    neg_image_idx = (sim.t() + _gumbel(sim, generator)).argmax(dim=1)
    return neg_text_idx, neg_image_idx


def _gumbel(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Gumbel noise shaped as ``like``, -log(-log(U)) with U uniform on [0, 1): U = 0
    gives -inf (never picked), and U < 1 always, so no +inf. ``rand_like`` when no generator is
    given: compiled with a symbolic batch size, ``rand(shape, generator=None)`` fails to trace."""
    uniform = torch.rand_like(like) if generator is None else torch.rand(
        like.shape, dtype=like.dtype, device=like.device, generator=generator)
    return -torch.log(-torch.log(uniform))


def itm_loss(itm_logits: torch.Tensor, batch: int) -> torch.Tensor:
    """Cross-entropy of (3B, 2) logits ordered [B positives, B image+neg-text, B neg-image+text]."""
    labels = torch.zeros(itm_logits.shape[0], dtype=torch.long, device=itm_logits.device)
    labels[:batch] = 1
    return F.cross_entropy(itm_logits.float(), labels)
