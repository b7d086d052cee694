"""Paper B's data sets, one registry row each: the runs' keys, the chapters' names and the figures' panels all read
the row, so a new data set is a new row (and a new distribution in core/data/toy.py if it needs one)."""
import math

import torch

from badminima.core.data import toy
from badminima.paper_b import datasets, protocol


def stripes(n: int, gen: torch.Generator, gap: float = 1.0, noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.arange(n) % 2
    x = torch.rand(n, 2, generator=gen) + noise * torch.randn(n, 2, generator=gen)
    return x + torch.stack([gap * y.float(), torch.zeros(n)], dim=1), y


def test_todays_rows_keep_their_keys_names_and_figures():
    # Stored runs are found by these keys: a row that changed them would orphan every run of its data set.
    cfg = protocol.config_for("smoke", datasets=protocol.TOY)
    options = {"gaussians": {"mu": 2.5}, "circles": {"noise": 0.5}, "spirals": {"t_max": 10.0, "jitter": 0.9},
               "spirals_2pi": {"t_max": 2 * math.pi, "jitter": 0.9}}
    for d, own in options.items():
        assert datasets.problem_of(cfg, d).key == {
            "dataset": d, "data": {"n_train": 100, "n_test": 200, "data_seed": None, "options": own}}
    assert datasets.names_of(cfg) == {"gaussians": "Gaussians", "circles": "concentric circles",
                                      "spirals": "spirals (t ≤ 10)", "spirals_2pi": "spirals (t ≤ 2π)"}
    assert protocol.WidthsConfig.datasets == protocol.group("sweep") == ("gaussians", "circles", "spirals", "vmnist")
    assert protocol.group("figure 1") == ("gaussians", "spirals", "vmnist")
    assert (protocol.group("figure 4"), protocol.group("figure 5")) == (("circles",), ("spirals",))
    assert protocol.BOUNDARY_DATASETS == ("gaussians", "circles", "spirals")
    assert protocol.TOY == ("gaussians", "circles", "spirals", "spirals_2pi")


def test_a_new_row_reaches_the_runs_the_names_and_the_figures(monkeypatch):
    monkeypatch.setitem(toy.DATASETS, "stripes", stripes)
    monkeypatch.setitem(protocol.REGISTRY, "stripes", protocol.DataSet(
        "stripes", "stripes", {"gap": 3.0}, {"noise": "circle_noise"}, ("sweep", "figure 4")))
    cfg = protocol.config_for("smoke", datasets=("circles", "stripes"), circle_noise=0.25)

    problem = datasets.problem_of(cfg, "stripes")
    assert problem.key == {"dataset": "stripes", "data": {"n_train": 100, "n_test": 200, "data_seed": None,
                                                          "options": {"gap": 3.0, "noise": 0.25}}}
    (x, y), (x_test, _) = toy.draw("stripes", 100, 200, cfg.seeds[1], gap=3.0, noise=0.25)
    assert torch.equal(problem.data.x[1], x) and torch.equal(problem.data.y[1], y)
    assert torch.equal(problem.data.x_test[1], x_test)
    assert problem.name == "stripes" and datasets.widths_of(cfg, "stripes") == cfg.widths

    assert datasets.names_of(cfg) == {"circles": "concentric circles", "stripes": "stripes"}
    both = [("circles", "concentric circles"), ("stripes", "stripes")]
    assert datasets.in_group(cfg, "sweep") == datasets.in_group(cfg, "figure 4") == both
    assert datasets.in_group(cfg, "figure 1") == [] and protocol.group("figure 4") == ("circles", "stripes")
