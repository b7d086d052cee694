import pytest
import torch

from badminima.core.metrics import accuracy, distance, margin, predict
from badminima.core.models import MLP


def test_distance_to_itself_is_zero_and_scales():
    w = torch.randn(3, 50)
    assert torch.allclose(distance(w, w), torch.zeros(3))
    assert torch.allclose(distance(2 * w, w), torch.ones(3)), "||2w - w|| / ||w|| = 1"
    assert torch.allclose(distance(w, 2 * w), torch.full((3,), 0.5)), "normalised by the second argument"
    v = torch.randn(3, 50)
    assert torch.allclose(distance(7 * w, 7 * v), distance(w, v)), "scale-free"


def test_margin_of_a_line_is_the_distance_to_it():
    points = torch.tensor([[3.0, 0.0], [-1.0, 2.0], [0.5, -4.0]])
    logit = lambda p: p[:, 0] - 1.0   # boundary: the line x = 1
    assert torch.allclose(margin(logit, points), torch.tensor([2.0, 2.0, 0.5]), atol=1e-3)


def test_margin_of_a_circle():
    logit = lambda p: p.norm(dim=1) - 2.0
    assert margin(logit, torch.tensor([[0.5, 0.0]]))[0] == pytest.approx(1.5, abs=1e-2)


def test_margin_is_capped_when_there_is_no_boundary():
    assert margin(lambda p: torch.ones(len(p)), torch.zeros(2, 2), radius=3.0).tolist() == [3.0, 3.0]


def test_accuracy_and_predict_binary_and_multiclass():
    assert predict(torch.tensor([[[-1.0], [2.0]]])).tolist() == [[0, 1]]
    assert predict(torch.tensor([[[0.0, 3.0, 1.0]]])).tolist() == [[1]]
    model = MLP([2, 1], seeds=[0, 1])
    x = torch.randn(1, 20, 2)
    y = predict(model(x.expand(2, 20, 2)))
    wrong = y.clone()
    wrong[0, :5] = 1 - wrong[0, :5]
    wrong[1, 10:] = 1 - wrong[1, 10:]
    # chunks of 3 do not divide 20: the last, partial chunk must count too
    assert accuracy(model, x, wrong, chunk=3).tolist() == [0.75, 0.5]
    agree = float((y[1] == y[0]).float().mean())
    assert accuracy(model, x, y[:1]).tolist() == pytest.approx([1.0, agree]), "one row of labels serves every member"
