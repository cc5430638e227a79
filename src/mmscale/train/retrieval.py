"""Image<->text retrieval recall@K from embeddings: pure functions with no model inside."""

from __future__ import annotations

import torch


def ranks_of_diagonal(similarity: torch.Tensor) -> torch.Tensor:
    """Rank (0 = best) of each row's true match, which sits on the diagonal.

    Ties count against the true match (rank = number of others scoring >= it), so a collapsed
    model whose embeddings are all equal scores recall 0, not 1.
    """
    true = similarity.diagonal().unsqueeze(1)
    return (similarity >= true).sum(dim=1) - 1


def retrieval_recall(image_emb: torch.Tensor, text_emb: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Recall@K both directions for N paired embeddings (row i of each is a pair).

    Returns flat keys ``i2t_r1``, ``t2i_r1``, ... and ``chance_r1`` (= 1/N) for reference.
    """
    sim = image_emb.float() @ text_emb.float().t()  # (N images, N texts)
    i2t, t2i = ranks_of_diagonal(sim), ranks_of_diagonal(sim.t())
    out = {}
    for k in ks:
        out[f"i2t_r{k}"] = (i2t < k).float().mean().item()
        out[f"t2i_r{k}"] = (t2i < k).float().mean().item()
    out["chance_r1"] = 1.0 / sim.shape[0]
    return out
