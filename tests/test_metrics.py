import pytest
import torch

from badminima.core.metrics import TABLE1_COLUMNS, accuracy, distance, margin, predict, table1_distances
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


def test_table1_distances_pair_each_column_with_its_two_parameter_vectors():
    # one-entry vectors 2^i apart: d(a, b) = |a - b| / |b| is exact and differs for every pair
    w = {name: torch.tensor([2.0 ** i]) for i, name in enumerate(["0R", "VR", "SR", "0A", "VA", "SA"])}
    table = table1_distances(w)
    assert list(table) == list(TABLE1_COLUMNS)
    assert list(table.values()) == [1 / 2, 3 / 4, 7 / 8, 15 / 16, 31 / 32, 8 / 16, 24 / 32]
    assert all(type(v) is float for v in table.values())


def test_margin_with_its_defaults_is_exact_along_its_rays():
    """64 rays include the axes; the grid's first crossing is bisected to well under a thousandth of its step."""
    points = torch.tensor([[3.0, 0.0], [-1.0, 0.0], [1.0, 2.5]])
    logit = lambda p: p[:, 0] - 1.0
    assert torch.allclose(margin(logit, points), torch.tensor([2.0, 2.0, 0.0]), atol=1e-5)
    vertical = margin(lambda p: p[:, 1] - 2.0, torch.tensor([[0.0, 0.0]]))
    assert vertical.item() == pytest.approx(2.0, abs=1e-5)
    assert margin(lambda p: torch.ones(len(p)), torch.zeros(1, 2)).tolist() == [6.0], "capped at radius 6"


def test_one_logit_of_exactly_zero_is_class_zero():
    assert predict(torch.tensor([[[0.0], [1e-30], [-1e-30]]])).tolist() == [[0, 1, 0]]


def test_margin_finds_a_boundary_in_the_walks_last_step():
    assert margin(lambda p: p[:, 0] - 5.95, torch.zeros(1, 2)).item() == pytest.approx(5.95, abs=1e-5)
    assert margin(lambda p: p[:, 0] - 6.05, torch.zeros(1, 2)).item() == 6.0, "beyond the radius: the radius"


def test_margin_between_the_walks_points_is_bisected():
    """Boundaries off the walk's 0.1 grid: the first flip and the step before it bracket the crossing, and
    bisecting that step finds it to well under 1e-6."""
    points = torch.tensor([[3.0, 0.0], [-1.0, 0.0], [0.62, 0.0]])
    assert torch.allclose(margin(lambda p: p[:, 0] - 0.77, points), torch.tensor([2.23, 1.77, 0.15]), atol=1e-6)
    assert margin(lambda p: p[:, 0] - 4.37, torch.zeros(1, 2)).item() == pytest.approx(4.37, abs=1e-6)
