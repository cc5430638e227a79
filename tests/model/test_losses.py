"""Loss values on cases small enough to check by hand."""

import math

import torch

from mmscale.model import losses


def test_itc_on_a_hand_checked_two_by_two_case():
    # Orthogonal unit embeddings, pair i matches i: logits = scale * I = [[2, 0], [0, 2]].
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = image.clone()
    loss = losses.itc_loss(image, text, torch.tensor(2.0))
    # each row: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2)
    assert math.isclose(loss.item(), math.log(1 + math.exp(-2)), rel_tol=1e-6)


def test_itc_is_symmetric_mean_of_both_directions():
    image = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    text = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # logits = I @ T^T = [[0, 1], [0.8, 0.6]] (scale 1)
    row = lambda xs, i: -xs[i] + math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    i2t = (row([0, 1], 0) + row([0.8, 0.6], 1)) / 2
    t2i = (row([0, 0.8], 0) + row([1, 0.6], 1)) / 2
    loss = losses.itc_loss(image, text, torch.tensor(1.0))
    assert math.isclose(loss.item(), (i2t + t2i) / 2, rel_tol=1e-6)


def test_itc_over_gathered_rows_averages_to_the_whole_batch_and_ignores_padding():
    """Local-loss form: each half scored against all rows; the halves' mean is the whole batch's loss."""
    gen = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(6, 4, generator=gen), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(6, 4, generator=gen), dim=-1)
    scale = torch.tensor(3.0)
    whole = losses.itc_loss(image, text, scale)
    pad = torch.zeros(1, 4)
    # two "processes" of 3 rows, each padded to 4 as a short batch would be (padding last)
    every_image = torch.cat([image[:3], pad, image[3:], pad])
    every_text = torch.cat([text[:3], pad, text[3:], pad])
    valid = torch.tensor([True, True, True, False] * 2)
    halves = [losses.itc_loss(image[i:i + 3], text[i:i + 3], scale,
                              losses.ContrastRows(every_image, every_text, valid, first))
              for i, first in ((0, 0), (3, 4))]
    torch.testing.assert_close((halves[0] + halves[1]) / 2, whole)
    assert not math.isclose(losses.itc_loss(image[:3], text[:3], scale).item(), halves[0].item(), rel_tol=1e-3)


def test_itm_loss_labels_first_third_as_matches():
    # 2 positives with logits favouring "match", 4 negatives favouring "no match": all right.
    logits = torch.tensor([[0.0, 3.0]] * 2 + [[3.0, 0.0]] * 4)
    assert math.isclose(losses.itm_loss(logits, batch=2).item(), math.log(1 + math.exp(-3)), rel_tol=1e-6)
    # swapping the halves makes every prediction wrong
    assert math.isclose(losses.itm_loss(logits.flip(1), batch=2).item(), math.log(1 + math.exp(3)), rel_tol=1e-6)


def test_hard_negatives_never_pick_the_positive_and_follow_similarity():
    sim = torch.tensor([[9.0, 8.0, -9.0], [8.0, 9.0, -9.0], [-9.0, 8.0, 9.0]])
    gen = torch.Generator().manual_seed(0)
    picks = [losses.sample_hard_negatives(sim, gen) for _ in range(50)]
    neg_text = torch.stack([p[0] for p in picks])
    neg_image = torch.stack([p[1] for p in picks])
    assert (neg_text != torch.arange(3)).all() and (neg_image != torch.arange(3)).all()
    assert (neg_text[:, 0] == 1).float().mean() > 0.95  # image 0's most similar other text is 1
    assert (neg_image[:, 0] == 1).float().mean() > 0.95  # text 0: column 0 -> image 1 (8 vs -9)


def test_hard_negatives_are_drawn_from_the_softmax_of_the_other_rows():
    """The Gumbel-max draw samples softmax(similarity) with the diagonal excluded: frequencies
    over many draws match those probabilities."""
    sim = torch.tensor([[5.0, 1.0, 0.0, -1.0], [0.5, 5.0, 1.5, 0.0], [2.0, 0.0, 5.0, 1.0], [0.0, 0.0, 0.0, 5.0]])
    gen = torch.Generator().manual_seed(1)
    draws = 5_000
    neg_text = torch.stack([losses.sample_hard_negatives(sim, gen)[0] for _ in range(draws)])
    neg_image = torch.stack([losses.sample_hard_negatives(sim, gen)[1] for _ in range(draws)])
    off_diagonal = sim.masked_fill(torch.eye(4, dtype=torch.bool), float("-inf"))
    for picks, probs in ((neg_text, off_diagonal.softmax(1)), (neg_image, off_diagonal.t().softmax(1))):
        for row in range(4):
            freq = torch.bincount(picks[:, row], minlength=4).float() / draws
            # 4.5 standard errors of a binomial share at these counts
            tol = 4.5 * (probs[row] * (1 - probs[row]) / draws).sqrt() + 1e-9
            assert ((freq - probs[row]).abs() <= tol).all(), (row, freq, probs[row])
            assert freq[row] == 0


def test_hard_negative_draw_is_generated_by_inductor_not_called_from_aten():
    """torch.multinomial has no Inductor lowering: compiled, it stayed an ATen call inside the
    step. The Gumbel-max draw must come out as generated code."""
    from torch._inductor.utils import run_and_get_code

    sim = torch.randn(8, 8)
    (neg_text, neg_image), code = run_and_get_code(torch.compile(losses.sample_hard_negatives), sim)
    assert code and not any("multinomial" in c for c in code)
    assert neg_text.shape == neg_image.shape == (8,)
    assert (neg_text != torch.arange(8)).all() and (neg_image != torch.arange(8)).all()
