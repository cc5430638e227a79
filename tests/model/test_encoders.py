"""The text encoder hands BERT its padding mask in a form that needs no host-device sync."""

from __future__ import annotations

import pytest
import torch

from mmscale.model.config import ModelConfig
from mmscale.model.encoders import TextEncoder


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    return TextEncoder(ModelConfig(text_encoder="bert-tiny", max_text_len=8)).eval()


def batch():
    ids = torch.randint(1000, 2000, (3, 8))
    mask = torch.ones(3, 8, dtype=torch.long)
    mask[0, 5:] = 0
    mask[2, 3:] = 0
    return ids, mask


def test_output_equals_bert_given_the_2d_mask(encoder):
    ids, mask = batch()
    ours = encoder(ids, mask)
    theirs = encoder.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    padded_out = encoder(ids, mask)[0, :5]
    ids[0, 5:] = 1999  # what sits under the padding does not reach the real tokens
    torch.testing.assert_close(encoder(ids, mask)[0, :5], padded_out, rtol=0, atol=1e-6)


def test_bert_is_not_asked_whether_the_mask_can_be_dropped(encoder, monkeypatch):
    """That question reads the mask's contents on the host (``mask.all()``): a sync in every eager
    forward. It must not be asked."""
    from transformers import masking_utils

    def asked(*args, **kwargs):
        raise AssertionError("transformers inspected the padding mask's contents")

    monkeypatch.setattr(masking_utils, "_ignore_bidirectional_mask_sdpa", asked)
    encoder(*batch())
    with pytest.raises(AssertionError, match="inspected"):  # the 2D mask would have asked
        ids, mask = batch()
        encoder.bert(input_ids=ids, attention_mask=mask)
