"""Paper A's Figures 5 and 6 (Section 3.6): the complexity measures and the robustness of the main grid's trained
runs, each run's numbers computed from its stored weights and stored once. Apart from experiments.py, which
trains the grids and tabulates their runs, because these are analyses of runs already trained."""
from __future__ import annotations

import pandas as pd
import torch

from badminima.core.metrics import fgsm_accuracy, frobenius_norm, path_norm
from badminima.core.store import Store
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


def measures(cfg: protocol.PaperAConfig, store: Store | None = None) -> pd.DataFrame:
    """Figures 5 and 6 per run of the main grid: Frobenius norm, l1 and l2 path norms, and test accuracy (%)
    under FGSM at each epsilon on the first `fgsm_size` test images. Each run's numbers are stored once."""
    store = store or Store()
    grid = experiments.main_grid(cfg)
    experiments.train_all(grid, store)
    rows = []
    for labels, run in grid:
        def compute(_workdir, run=run):
            data = image_runs.prepare(run.data, torch.device("cpu"))
            test = (data.x_test[0, :cfg.fgsm_size], data.y_test[0, :cfg.fgsm_size])
            return _measure(cfg, run, image_runs.run_image(run, store, progress=False).weights, test), {}
        # "measures" 2: average pools enter the l2 path norm as (1/k)^2 (1/k before), so older results retire
        key = {"run": run, "fgsm_epsilons": cfg.fgsm_epsilons, "fgsm_size": cfg.fgsm_size, "measures": 2}
        m = store.load_or_run("paper_a_measures", key, compute).metrics
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
