import pytest
import torch

from mmscale.train.retrieval import ranks_of_diagonal, retrieval_recall


def test_ranks_on_a_constructed_similarity():
    sim = torch.tensor([[0.9, 0.1, 0.2],   # row 0: true pair best -> rank 0
                        [0.8, 0.3, 0.5],   # row 1: 0.8 and 0.5 beat 0.3 -> rank 2
                        [0.1, 0.7, 0.6]])  # row 2: 0.7 beats 0.6 -> rank 1
    assert ranks_of_diagonal(sim).tolist() == [0, 2, 1]


def test_recall_both_directions_and_chance():
    image = torch.eye(4)
    text = torch.eye(4)[[0, 1, 3, 2]]  # pairs 2 and 3 swapped
    out = retrieval_recall(image, text, ks=(1, 5))
    assert out["i2t_r1"] == pytest.approx(0.5) and out["t2i_r1"] == pytest.approx(0.5)
    assert out["i2t_r5"] == 1.0 and out["chance_r1"] == 0.25


def test_collapsed_embeddings_score_zero_not_one():
    same = torch.ones(5, 3) / 3**0.5
    out = retrieval_recall(same, same)
    assert out["i2t_r1"] == 0.0 and out["t2i_r1"] == 0.0
