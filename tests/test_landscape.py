"""The measures of core/landscape.py on cases with a known answer."""
import math

import pytest
import torch
from torch import nn

from badminima.core import landscape
from badminima.core.metrics import margin
from badminima.core.models import MLP


def quadratic(a: torch.Tensor):
    """loss(w) = w'Aw / 2, whose Hessian is A everywhere."""
    return (lambda p: 0.5 * p["w"] @ a @ p["w"]), {"w": torch.randn(len(a), dtype=a.dtype)}


def test_power_iteration_and_hutchinson_find_a_quadratics_top_eigenvalue_and_trace():
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    eig = torch.tensor([7.0, 3.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    loss, params = quadratic(q @ torch.diag(eig) @ q.T)
    top, iters = landscape.top_eigenvalue(loss, params, tol=1e-10, max_iters=500)
    assert top == pytest.approx(7.0, rel=1e-6) and iters < 500
    trace, se = landscape.hessian_trace(loss, params, samples=400)
    assert abs(trace - float(eig.sum())) < 4 * se and se < 0.5


def test_the_hessian_vector_product_of_a_network_matches_its_full_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randint(0, 3, (20,))
    loss, params = landscape.training_loss(model, x, y)
    names, shapes = list(params), [p.shape for p in params.values()]
    sizes = [p.numel() for p in params.values()]

    def flat_loss(v):
        return loss({n: t.view(s) for n, t, s in zip(names, v.split(sizes), shapes)})

    full = torch.autograd.functional.hessian(flat_loss, torch.cat([p.flatten() for p in params.values()]))
    top, _ = landscape.top_eigenvalue(loss, params, tol=1e-12, max_iters=2000)
    largest = torch.linalg.eigvalsh(full).abs().max()
    assert top == pytest.approx(float(largest), rel=1e-5)


def test_between_two_states_is_the_straight_line():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, -2.0]), "n": torch.tensor(7)}
    assert torch.equal(landscape.between(a, b, 0.0)["w"], a["w"])
    assert torch.equal(landscape.between(a, b, 1.0)["w"], b["w"])
    assert torch.equal(landscape.between(a, b, 0.25)["w"], torch.tensor([1.0, 1.0]))
    assert landscape.between(a, b, 0.5)["n"] == 3   # counts are not interpolated


def test_batch_norm_statistics_are_recomputed_on_the_given_inputs():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    x = torch.randn(100, 2)
    landscape.recompute_batch_norm(model, x, chunk=25)
    with torch.no_grad():
        h = model[0](x)
    assert torch.allclose(model[1].running_mean, h.mean(0), atol=1e-6)
    assert not model.training


@pytest.mark.parametrize("steps", [1, 5])
def test_the_smallest_flipping_perturbation_of_a_linear_model_is_its_l_infinity_margin(steps):
    w, b = torch.tensor([[1.0], [-2.0], [0.5]]), 0.3
    logits_of = lambda z: z @ w + b
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    exact = (x @ w + b).abs()[:, 0] / w.abs().sum()
    found = landscape.flip_epsilon(logits_of, x, eps_max=4.0, steps=steps, bisections=16)
    reachable = exact < 4.0
    assert torch.allclose(found[reachable], exact[reachable], atol=4.0 / 2 ** 16 + 1e-6)
    assert torch.isinf(found[~reachable]).all()
    assert torch.isinf(landscape.flip_epsilon(logits_of, x, eps_max=1e-3)).sum() > 40


def test_the_exact_boundary_distance_of_a_net_with_a_known_boundary():
    # f(z) = relu(z1) - relu(-z1) - 0.5 = z1 - 0.5: the boundary is the line z1 = 0.5
    w1, b1 = torch.tensor([[1.0, -1.0], [0.0, 0.0]]), torch.zeros(2)
    w2, b2 = torch.tensor([1.0, -1.0]), torch.tensor(-0.5)
    points = torch.tensor([[0.0, 0.0], [2.0, 5.0], [-1.0, -3.0], [0.5, 1.0]])
    got = landscape.boundary_distance_2d(w1, b1, w2, b2, points)
    assert torch.allclose(got, (points[:, 0] - 0.5).abs(), atol=1e-6)


def test_the_exact_boundary_distance_of_a_trained_size_net_agrees_with_ray_walking():
    net = MLP((2, 12, 1), seeds=(3,))
    with torch.no_grad():
        net.weights[0].mul_(3)
    w1, b1, w2, b2 = net.weights[0][0], net.biases[0][0, 0], net.weights[1][0, :, 0], net.biases[1][0, 0, 0]
    points = torch.randn(40, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        exact = landscape.boundary_distance_2d(w1, b1, w2, b2, points)
        walked = margin(lambda z: net(z[None])[0, :, 0], points, directions=720, radius=6.0, steps=600)
    inside = walked < 6.0
    assert inside.sum() > 20
    assert (exact[inside] <= walked[inside] + 1e-4).all(), "the exact distance is the smallest"
    assert torch.allclose(exact[inside], walked[inside], atol=0.02)


def test_layer_distances_are_relative_to_the_start():
    start = {"a": torch.tensor([3.0, 4.0]), "steps": torch.tensor(5)}
    end = {"a": torch.tensor([3.0, 9.0]), "steps": torch.tensor(9)}
    assert landscape.layer_distances(start, end) == {"a": pytest.approx(1.0)}
