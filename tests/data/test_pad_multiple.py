"""data.pad_multiple: batches padded to their longest caption, rounded up to a multiple (capped at
max_text_len); the extra columns are [PAD] and masked out, and the fused model computes the same
losses from them as from full-length padding."""

import pytest
import torch

from mmscale.config.load import load_config
from mmscale.data.config import DataConfig
from mmscale.errors import ConfigError

CAPTIONS = ["a red circle", "two blue squares on a grey background at the top left"]


def test_lengths_round_up_to_the_multiple_and_stop_at_max_len(tokenizer):
    longest, _ = tokenizer.encode_batch(CAPTIONS, max_len=128, pad_to_longest=True)
    ids, mask = tokenizer.encode_batch(CAPTIONS, max_len=128, pad_to_longest=True, pad_multiple=8)
    assert ids.shape[1] == -(-longest.shape[1] // 8) * 8 > longest.shape[1]
    torch.testing.assert_close(ids[:, :longest.shape[1]], longest)
    assert (ids[:, longest.shape[1]:] == tokenizer.pad_id).all() and (mask[:, longest.shape[1]:] == 0).all()
    capped, _ = tokenizer.encode_batch(CAPTIONS, max_len=longest.shape[1] + 1, pad_to_longest=True,
                                       pad_multiple=64)
    assert capped.shape[1] == longest.shape[1] + 1
    fixed, _ = tokenizer.encode_batch(CAPTIONS, max_len=128, pad_multiple=8)  # without pad_to_longest: max_len
    assert fixed.shape[1] == 128


def test_the_loader_batches_use_it(good_dataset, tokenizer):
    from mmscale.data.loader import build_loader

    cfg = DataConfig(path=str(good_dataset / "train.jsonl"), num_workers=0, image_size=32, pad_to_longest=True, pad_multiple=8)
    batch = next(iter(build_loader(cfg, 4, tokenizer)))
    assert batch.input_ids.shape[1] % 8 == 0 and batch.input_ids.shape[1] < 128


@pytest.mark.parametrize("overrides,field", [(["data.pad_multiple=-1"], "data.pad_multiple"),
                                             (["data.pad_multiple=16"], "data.pad_multiple")])
def test_bad_settings_name_the_field(overrides, field):
    from mmscale.train import TrainJob

    with pytest.raises(ConfigError, match=field):
        load_config(TrainJob, preset="tiny", overrides=overrides)


def test_fused_model_losses_do_not_depend_on_padding_length():
    from mmscale.model import MultimodalModel
    from tests.model.conftest import tiny_model_config

    model = MultimodalModel(tiny_model_config(fusion="fused")).eval()  # no dropout: same function
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randn(4, 3, 32, 32, generator=gen)
    ids = torch.randint(1, 1000, (4, 16), generator=gen)
    mask = torch.zeros_like(ids)
    for row, length in enumerate((3, 5, 6, 4)):
        mask[row, :length] = 1
    ids = ids * mask  # [PAD] = 0 after each caption
    losses = []
    for width in (16, 8):
        torch.manual_seed(1)  # the same hard negatives
        out = model(pixels, ids[:, :width], mask[:, :width])
        losses.append(torch.stack([out["loss_itc"], out["loss_itm"]]).detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
