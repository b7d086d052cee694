"""Paper A's Figures 5 and 6 (Section 3.6): the complexity measures and the robustness of the main grid's trained
runs, each run's numbers computed from its stored weights and stored once. Apart from experiments.py, which
trains the grids and tabulates their runs, because these are analyses of runs already trained."""
from __future__ import annotations

import functools

import pandas as pd
import torch

from badminima.core import grid
from badminima.core.jobs import Job
from badminima.core.metrics import fgsm_accuracy, frobenius_norm, path_norm
from badminima.core.store import Store, Stored
from badminima.paper_a import experiments, protocol
from badminima.paper_a import runs as image_runs
from badminima.paper_a.runs import ImageRun


def _measure(cfg: protocol.PaperAConfig, run: ImageRun, weights: dict, test: tuple[torch.Tensor, torch.Tensor]) -> dict:
    model = image_runs.load_model(run, weights)
    raw = image_runs.prepare(run.data, torch.device("cpu")).raw
    shape = tuple(raw.x_train.shape[1:])
    fgsm = fgsm_accuracy(model, test[0], test[1], list(cfg.fgsm_epsilons), torch.tensor(raw.mean),
                         torch.tensor(raw.std))
    return {"frobenius": frobenius_norm(model), "path l1": path_norm(model, shape, 1),
            "path l2": path_norm(model, shape, 2), "fgsm": fgsm}


def _key(cfg: protocol.PaperAConfig, run: ImageRun) -> dict:
    # "measures" 2: average pools enter the l2 path norm as (1/k)^2 (1/k before), so older results retire
    return {"run": run, "fgsm_epsilons": cfg.fgsm_epsilons, "fgsm_size": cfg.fgsm_size, "measures": 2}


def _stored(cfg: protocol.PaperAConfig, run: ImageRun, store: Store) -> Stored:
    """One run's measures, computed from its stored weights the first time they are asked for."""
    def compute(_workdir):
        data = image_runs.prepare(run.data, torch.device("cpu"))
        test = (data.x_test[0, :cfg.fgsm_size], data.y_test[0, :cfg.fgsm_size])
        return _measure(cfg, run, image_runs.run_image(run, store, progress=False).weights, test), {}
    return store.load_or_run("paper_a_measures", _key(cfg, run), compute)


def measures(cfg: protocol.PaperAConfig, store: Store | None = None) -> pd.DataFrame:
    """Figures 5 and 6 per run of the main grid: Frobenius norm, l1 and l2 path norms, and test accuracy (%)
    under FGSM at each epsilon on the first `fgsm_size` test images. Each run's numbers are stored once; those
    missing are computed over experiments.default_workers processes, since each is computed on one thread (as
    every stored result is) and in this process alone would leave the other cores idle."""
    store = store or Store()
    cells = experiments.main_grid(cfg)
    experiments.train_all(cells, store)
    runs = [run for _, run in cells]
    todo = [Job(functools.partial(_stored, cfg, run), (("paper_a_measures", _key(cfg, run)),),
                inputs=(("image", run),), label=f"measures {run.model} seed {run.seed}") for run in runs]
    grid.run(todo, store, workers=experiments.default_workers(runs), desc=f"measures of {len(runs)} runs")
    rows = []
    for labels, run in cells:
        m = _stored(cfg, run, store).metrics
        base = {**labels, "frobenius": m["frobenius"], "path l1": m["path l1"], "path l2": m["path l2"]}
        rows += [{**base, "epsilon": eps, "fgsm acc %": 100 * acc} for eps, acc in zip(cfg.fgsm_epsilons, m["fgsm"])]
    return pd.DataFrame(rows)


def robustness(measures_table: pd.DataFrame) -> pd.DataFrame:
    """Per run: accuracy under FGSM (% , the mean over the non-zero epsilons), raw and as a share of the run's clean
    accuracy on the same images (epsilon 0): a model that is less accurate to begin with has fewer points to lose."""
    keys = ["model", "seed", "init", "mode"]
    clean = measures_table[measures_table["epsilon"] == 0].set_index(keys)["fgsm acc %"]
    attacked = measures_table[measures_table["epsilon"] > 0].groupby(keys)["fgsm acc %"].mean()
    table = pd.DataFrame({"clean acc %": clean, "fgsm acc %": attacked})
    return table.assign(**{"fgsm % of clean": 100 * table["fgsm acc %"] / table["clean acc %"]}).reset_index()


NORMS = ["frobenius", "path l1", "path l2"]
ROBUSTNESS = ["clean acc %", "fgsm acc %", "fgsm % of clean"]


def norms(measures_table: pd.DataFrame) -> pd.DataFrame:
    """One row per run with its norms (they do not depend on epsilon: the rows at the smallest one)."""
    return measures_table[measures_table["epsilon"] == measures_table["epsilon"].min()]


def per_setting(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The mean over seeds of `columns` per model, recipe and init."""
    return table.groupby(["model", "mode", "init"])[columns].mean()
