"""Retrieval evaluation on the val split: embed N pairs, then recall@1/5/10 both directions."""

from __future__ import annotations

import dataclasses

import torch

from mmscale.data.normalize import to_model_input
from mmscale.data.readers import resolve_source
from mmscale.train.data import SplitBatches
from mmscale.train.retrieval import retrieval_recall

EVAL_SPLIT = "val"  # the split retrieval recall is measured on (the train split when there is none)


@torch.no_grad()
def embed_split(model, batches, device, precision) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, E) image and text embeddings, in val order, as float32 on the CPU."""
    images, texts = [], []
    for batch in batches:
        if len(batch) == 0:  # every sample bad: counted by the loader, nothing to embed
            continue
        pixels = to_model_input(batch.images, device)
        ids = batch.input_ids.to(device, non_blocking=True)
        mask = batch.attention_mask.to(device, non_blocking=True)
        with precision.autocast():
            images.append(model.image_embedding(pixels).float().cpu())
            texts.append(model.text_embedding(ids, mask).float().cpu())
    if not images:
        return torch.empty(0), torch.empty(0)
    return torch.cat(images), torch.cat(texts)


def evaluate_retrieval(job, model, tokenizer, env, device, precision) -> dict:
    """Recall on the first ``train.eval_samples`` pairs of the val split ({} when it is empty).

    Every rank runs it on the same pairs (FSDP2 needs all ranks in each forward); the model is
    put back in training mode afterwards.
    """
    cfg = job.train
    eval_job = dataclasses.replace(
        job, data=dataclasses.replace(job.data, limit=cfg.eval_samples, shuffle=False)
    )
    batch = max(1, min(cfg.eval_samples, cfg.batch_size))
    split = SplitBatches(eval_job, EVAL_SPLIT, batch, tokenizer, env=None, device=device, drop_last=False)
    if split.num_samples < 2:
        return {}
    was_training = model.training
    model.eval()
    try:
        image_emb, text_emb = embed_split(model, split.epoch(0), device, precision)
    finally:
        model.train(was_training)
    if image_emb.shape[0] < 2:  # bad samples left fewer than two pairs to rank
        return {}
    out = retrieval_recall(image_emb, text_emb)
    out["samples"] = int(image_emb.shape[0])
    # a single manifest file is its own every split: then these pairs are training samples
    out["split"] = "train" if _same_files(job.data, EVAL_SPLIT) else EVAL_SPLIT
    return out


def _same_files(data_cfg, split: str) -> bool:
    try:
        return resolve_source(data_cfg.path, data_cfg.format, split).files == \
            resolve_source(data_cfg.path, data_cfg.format, "train").files
    except Exception:  # noqa: BLE001 - a source that does not resolve has no train split to match
        return False
