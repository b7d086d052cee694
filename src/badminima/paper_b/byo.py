"""Paper B's experiments on your own data: `experiments(x_train, y_train, x_test, y_test, widths, seeds)` runs
Experiments 1-3 and the norm run for one-hidden-layer ReLU nets of the given widths, exactly as the chapters run
them on the built-in data sets (badminima.paper_b.runs: the same fast path, the same result store), and
returns the chapters' tidy table.

Per width and seed, from the seed's random init:
- Exp 1 trains on the true labels;
- phase 1 trains on random labels (seed s draws them from RANDOM_LABEL_SEED + s), from the same init;
- Exp 2 retrains every layer from phase 1's weights on the true labels;
- Exp 3 keeps phase 1's first layer frozen and trains a readout reset to zero on the true labels;
- Norm trains the random init rescaled to phase 1's weight norm on the true labels.
Every phase runs until the training set is classified without error or the step cap.

Each run is stored under a key holding, besides its width, seeds and training settings, a SHA-256 of the four
arrays as trained on (float32 inputs flattened to (n, d), int64 labels: their bytes, dtype and shape): calling
again with the same data loads the results, other data never does. The `name` labels the table only."""
from __future__ import annotations

import math
import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from badminima.core import arrays
from badminima.core.config import ParameterError, check_range, check_seeds
from badminima.core.store import Store
from badminima.core.train import TrainConfig
from badminima.paper_b import datasets, protocol
from badminima.paper_b.experiments import problem_table

Tensor = torch.Tensor


def experiments(x_train: Any, y_train: Any, x_test: Any, y_test: Any, widths: Iterable[int], seeds: Iterable[int],
                *, lr: float = 0.01, max_steps: int = protocol.WidthsConfig.max_steps, batch_size: int | None = None,
                name: str = "my data", store: Store | None = None) -> pd.DataFrame:
    """Paper B's Experiments 1-3 and the norm run on your arrays, at each width (hidden units) and seed.

    x_train, x_test: numpy arrays or torch tensors of shape (n, d) (or (n, ...), flattened to (n, d)).
    y_train, y_test: integer labels 0 .. k-1, k >= 2 (every class present in y_train); two classes train one logit
    with the logistic loss, more train k logits with cross-entropy.
    lr: the SGD learning rate (no momentum, no weight decay, as in the paper).
    max_steps: the cap per phase; with `batch_size` rounded up to whole epochs (the table's "cap" column says).
    batch_size: None (or at least n) for full-batch gradient descent, else minibatch SGD.
    name: the table's "dataset" and "name" columns.
    store: where results are kept (default: the project's store).

    Returns one row per width, experiment ("Exp 1", "Exp 2", "Exp 3", "Norm") and seed, with the columns of
    badminima.paper_b.experiments.width_table: test and training accuracy (%), steps to zero training error (<NA>:
    the run hit the cap or diverged), the cap, whether the run hit the cap, fitted (zero training error) or
    diverged (non-finite loss), phase 1's training accuracy on the random labels and whether it hit the cap,
    fitted or diverged, and the weight norms at the start and end. One warning line says when a precondition
    failed: phase 1 short of zero training error, a run that did not fit or diverged.
    badminima.paper_b.experiments.summary and gaps, and badminima.paper_b.claims.sweep_claims, take it as it is."""
    widths = _check_widths(widths)
    own = problem(x_train, y_train, x_test, y_test, seeds, lr=lr, max_steps=max_steps, batch_size=batch_size,
                  name=name)
    store = store or Store()
    table = pd.concat([problem_table(own, p, store) for p in widths], ignore_index=True)
    failed = preconditions_failed(table)
    if failed:
        warnings.warn(f"badminima: {failed}", stacklevel=2)
    return table


def preconditions_failed(table: pd.DataFrame) -> str:
    """One line on the runs of a bring-your-own table whose preconditions failed (empty when none did)."""
    parts = []
    phase1 = table[table["experiment"] == "Exp 2"]
    short = phase1[~phase1["phase-1 fitted"].astype(bool)]
    if len(short):
        parts.append(f"phase 1 did not reach zero training error on its random labels in {len(short)} of "
                     f"{len(phase1)} runs (lowest {short['phase-1 acc %'].min():.1f}%), so Exp 2, Exp 3 and Norm "
                     f"did not start from a fit of them there")
    unfit = table[~table["fitted"].astype(bool)]
    if len(unfit):
        by = ", ".join(f"{e} {n}" for e, n in unfit.groupby("experiment", sort=False).size().items())
        parts.append(f"{len(unfit)} of {len(table)} runs did not fit their training set ({by})")
    lost = int(table["diverged"].astype(bool).sum() + phase1["phase-1 diverged"].astype(bool).sum())
    if lost:
        parts.append(f"{lost} diverged (non-finite loss)")
    if not parts:
        return ""
    return ("preconditions failed: " + "; ".join(parts) + "; the columns 'phase-1 fitted', 'fitted' and 'diverged' "
            "say which rows")


def problem(x_train: Any, y_train: Any, x_test: Any, y_test: Any, seeds: Iterable[int], *, lr: float = 0.01,
            max_steps: int = protocol.WidthsConfig.max_steps, batch_size: int | None = None, name: str = "my data") -> datasets.Problem:
    """Your arrays as the runs see them (see `experiments`), checked: every bad argument is a ParameterError
    naming it. badminima.paper_b.runs.run_problem(problem, width) gives a width's stored runs (phase 1's
    weights, every run's training curve)."""
    x, x_test_ = _inputs("x_train", x_train), _inputs("x_test", x_test)
    if x_test_.shape[1:] != x.shape[1:]:
        raise ParameterError(f"x_test=array of shape {_shape(x_test)} does not fit x_train; allowed: rows of "
                             f"{x.shape[1]} features, as in x_train")
    y = arrays.labels("y_train", y_train, len(x), "x_train")
    y_test_ = arrays.labels("y_test", y_test, len(x_test_), "x_test")
    classes = arrays.classes(y, y_test_)
    seeds = check_seeds(arrays.integers(seeds))
    check_range("lr", lr, 0, open_low=True)
    check_range("max_steps", max_steps, 1, integer=True)
    if batch_size is not None:
        check_range("batch_size", batch_size, 1, integer=True)
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"name={name!r} is not allowed; allowed: a non-empty string")
    n = len(x)
    batch = batch_size if batch_size is not None and batch_size < n else None   # at least n: full batch
    epochs = math.ceil(max_steps / math.ceil(n / batch)) if batch else max_steps
    data = datasets.Data(x[None], y[None], x_test_[None], y_test_[None], classes)
    return datasets.Problem(name, name, data, TrainConfig(lr=lr, batch_size=batch, max_epochs=epochs), seeds,
                            {"dataset": "arrays", "data": {"sha256": arrays.digest(x, y, x_test_, y_test_)}})




def _shape(value: Any) -> tuple[int, ...]:
    return tuple(np.shape(value)) if not isinstance(value, Tensor) else tuple(value.shape)




def _inputs(name: str, value: Any) -> Tensor:
    """Inputs as float32 (n, d)."""
    t = arrays.as_tensor(name, value)
    if t.dim() < 2 or t.shape[0] == 0 or t[0].numel() == 0:
        raise ParameterError(f"{name}=array of shape {tuple(t.shape)} is not allowed; allowed: shape (n, d) with "
                             f"n, d >= 1")
    x = t.flatten(1).float()
    if not bool(torch.isfinite(x).all()):
        raise ParameterError(f"{name}=array of shape {tuple(t.shape)} holds NaN or infinite values (in float32); "
                             f"allowed: finite numbers")
    return x










def _check_widths(widths: Any) -> tuple[int, ...]:
    given = arrays.integers(widths)
    if (not isinstance(given, tuple) or not given or len(set(given)) != len(given)
            or not all(isinstance(p, int) and p > 0 for p in given)):
        raise ParameterError(f"widths={widths!r} is not allowed; allowed: a non-empty list of distinct positive "
                             f"integers (hidden units)")
    return given
