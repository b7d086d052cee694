import numpy as np
import pandas as pd
import pytest
import torch

from badminima.core import fastmlp
from badminima.core.config import ParameterError
from badminima.core.metrics import accuracy
from badminima.core.models import MLP
from badminima.core.store import Store
from badminima.core.train import TrainConfig, default_device
from badminima.paper_b import byo, claims, experiments, protocol, runs

D = 5              # an input dimension no chapter uses
WIDTHS = (4, 8)
SEEDS = (0, 1)
RUN = dict(lr=0.5, max_steps=300)


def arrays(classes: int, n: int = 40, n_test: int = 30, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Linearly separable data in D dimensions: the label is the argmax of `classes` fixed linear scores (for two
    classes, their sign), so most runs fit within the test's few hundred steps."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(D, classes))
    x, x_test = rng.normal(size=(n, D)), rng.normal(size=(n_test, D))
    return x, (x @ scores).argmax(1), x_test, (x_test @ scores).argmax(1)


# (classes, batch_size): a binary case by full-batch gradient descent, a 3-class one by minibatch SGD.
CASES = [(2, None), (3, 16)]


@pytest.fixture(scope="module", params=CASES, ids=["binary", "3 classes"])
def case(request, tmp_path_factory):
    classes, batch = request.param
    data = arrays(classes)
    store = Store(tmp_path_factory.mktemp("store"))
    # numpy widths and a list of seeds: the later calls' tuples must find the same runs
    table = byo.experiments(*data, np.array(WIDTHS), list(SEEDS), batch_size=batch, name="mine", store=store, **RUN)
    return classes, batch, data, store, table


def test_the_table_has_the_chapters_columns_and_one_row_per_width_experiment_and_seed(case, tmp_path):
    classes, batch, _, _, table = case
    builtin = experiments.width_table(protocol.config_for("smoke", datasets=("gaussians",), max_steps=2, n_test=10),
                                      "gaussians", 4, Store(tmp_path))
    assert list(table.columns) == list(builtin.columns)
    assert len(table) == len(WIDTHS) * 4 * len(SEEDS)
    assert sorted(table.groupby(["width", "experiment", "seed"]).size().index) == sorted(
        (p, e, s) for p in WIDTHS for e in runs.MEMBERS for s in SEEDS)
    assert set(table.dataset) == set(table.name) == {"mine"}
    steps_per_epoch = 1 if batch is None else 3              # 40 points in batches of 16
    assert (table.cap == steps_per_epoch * -(-RUN["max_steps"] // steps_per_epoch)).all()
    assert table["test acc %"].between(0, 100).all()
    assert (table.loc[~table["hit cap"], "train acc %"] == 100).all(), "a run that stopped fitted"
    assert table.loc[table.experiment == "Exp 1", "phase-1 acc %"].isna().all()
    assert table.loc[table.experiment != "Exp 1", "phase-1 acc %"].notna().all()


def test_exp1_is_training_the_same_nets_directly_on_the_same_data(case):
    classes, batch, (x, y, x_test, y_test), _, table = case
    x, x_test = (torch.tensor(a, dtype=torch.float32)[None] for a in (x, x_test))
    y, y_test = (torch.tensor(a)[None] for a in (y, y_test))
    steps_per_epoch = 1 if batch is None else 3
    cfg = TrainConfig(lr=RUN["lr"], batch_size=batch, max_epochs=-(-RUN["max_steps"] // steps_per_epoch))
    exp1 = table[table.experiment == "Exp 1"]
    assert exp1["steps"].notna().any(), "some runs fit, so the steps compared are stopping points"
    for width in WIDTHS:
        model = MLP((D, width, 1 if classes == 2 else classes), SEEDS)
        run = fastmlp.train_mlp(model, (x, y), cfg, SEEDS, device=default_device())
        rows = exp1[exp1.width == width].sort_values("seed")
        assert [None if pd.isna(s) else int(s) for s in rows.steps] == run.fit_step
        model.cpu()
        direct = accuracy(model, x_test.expand(len(SEEDS), -1, -1), y_test.expand(len(SEEDS), -1)) * 100
        assert rows["test acc %"].tolist() == pytest.approx(direct.tolist(), abs=1e-3)


def test_a_second_call_loads_whatever_the_arrays_type_and_the_name(case, monkeypatch):
    classes, batch, data, store, table = case
    monkeypatch.setattr(fastmlp, "train_mlp", lambda *a, **k: pytest.fail("retrained"))
    again = byo.experiments(*data, WIDTHS, SEEDS, batch_size=batch, name="mine", store=store, **RUN)
    assert again.equals(table)
    as_torch = [torch.tensor(a) for a in data]
    renamed = byo.experiments(*as_torch, WIDTHS, SEEDS, batch_size=batch, name="other", store=store, **RUN)
    assert set(renamed.name) == {"other"}
    assert renamed.drop(columns=["dataset", "name"]).equals(table.drop(columns=["dataset", "name"]))


def test_other_data_is_another_key(case, monkeypatch):
    classes, batch, (x, y, x_test, y_test), store, _ = case
    changed_x = x.copy()
    changed_x[3, 2] += 1e-3
    changed_y = y.copy()
    changed_y[0] = (y[0] + 1) % classes
    changed_test = x_test.copy()
    changed_test[0, 0] = -changed_test[0, 0]
    variants = [(x, y, x_test, y_test), (changed_x, y, x_test, y_test), (x, changed_y, x_test, y_test),
                (x, y, changed_test, y_test), (x, y, x_test[:-1], y_test[:-1]),
                (x.reshape(40, 5, 1), y, x_test.reshape(30, 5, 1), y_test)]   # the same values, another shape
    keys = [byo.problem(*v, SEEDS, batch_size=batch, **RUN).key["data"]["sha256"] for v in variants]
    assert len(set(keys[:-1])) == len(keys) - 1
    assert keys[-1] == keys[0], "inputs are flattened to (n, d) before the key is taken"

    class Retrained(Exception):
        pass

    def retrain(*args, **kwargs):
        raise Retrained

    monkeypatch.setattr(fastmlp, "train_mlp", retrain)
    for v in variants[1:-1]:
        with pytest.raises(Retrained):
            byo.experiments(*v, WIDTHS[:1], SEEDS, batch_size=batch, store=store, **RUN)


def test_the_chapters_summaries_and_claims_take_the_table(case):
    table = case[-1]
    summary = experiments.summary(table)
    assert len(summary) == len(WIDTHS) * 4 and (summary.runs == len(SEEDS)).all()
    gaps = experiments.gaps(table)
    assert list(gaps.width) == list(WIDTHS) and (gaps.seeds == len(SEEDS)).all()
    verdicts = claims.sweep_claims(table)
    assert any("Exp 2 generalizes worse than Exp 1 (mine, p = 8)" == v.claim for v in verdicts)


def good() -> dict:
    x, y, x_test, y_test = arrays(3)
    return dict(x_train=x, y_train=y, x_test=x_test, y_test=y_test, widths=WIDTHS, seeds=SEEDS)


BAD = [
    (dict(x_train="pixels"), r"x_train=str is not an array of numbers"),
    (dict(x_train=np.zeros(40)), r"x_train=array of shape \(40,\) is not allowed; allowed: shape \(n, d\)"),
    (dict(x_train=np.full((40, D), np.nan)), r"x_train=array of shape \(40, 5\) holds NaN"),
    (dict(x_test=np.zeros((30, D + 1))), r"x_test=array of shape \(30, 6\) does not fit x_train; allowed: rows of 5"),
    (dict(y_train=np.zeros(39, dtype=int)), r"y_train=array of shape \(39,\) does not fit x_train; allowed: shape \(40,\)"),
    (dict(y_test=np.zeros((30, 1), dtype=int)), r"y_test=array of shape \(30, 1\) does not fit x_test"),
    (dict(y_train=np.full(40, 0.5)), r"y_train=array of dtype float64 holds values that are not whole numbers"),
    (dict(y_train=np.zeros(40, dtype=int)), r"y_train=array of labels \[0\] has fewer than 2 classes"),
    (dict(y_train=np.arange(40) % 2 * 2), r"y_train=array of labels \[0, 2\] is not labelled 0 .. k-1"),
    (dict(y_train=np.arange(40) % 2 - 1), r"y_train=array of labels \[-1, 0\] is not labelled 0 .. k-1"),
    (dict(y_test=np.arange(30) % 4), r"y_test=array with labels \[3\] outside y_train's classes; allowed: labels 0 .. 2"),
    (dict(widths=()), r"widths=\(\) is not allowed; allowed: a non-empty list of distinct positive integers"),
    (dict(widths=(0, 4)), r"widths=\(0, 4\) is not allowed"),
    (dict(widths=(4, 4)), r"widths=\(4, 4\) is not allowed"),
    (dict(widths=4.5), r"widths=4.5 is not allowed"),
    (dict(seeds=(1, 1)), r"seeds=\(1, 1\) must be a non-empty list of distinct non-negative integers"),
    (dict(seeds=[-1]), r"seeds=\(-1,\) must be"),
    (dict(lr=0), r"lr=0 is out of range"),
    (dict(max_steps=0), r"max_steps=0 is out of range"),
    (dict(batch_size=0), r"batch_size=0 is out of range"),
    (dict(name=""), r"name='' is not allowed"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m.split("=")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_input_is_one_line_naming_the_argument(change, message, tmp_path, monkeypatch):
    monkeypatch.setattr(fastmlp, "train_mlp", lambda *a, **k: pytest.fail("trained before checking"))
    with pytest.raises(ParameterError, match=f"^{message}") as err:
        byo.experiments(**{**good(), **change}, store=Store(tmp_path))
    assert "\n" not in str(err.value)
    assert err.value.name == next(iter(change))


def test_seeds_may_be_a_range_and_two_classes_train_one_logit():
    problem = byo.problem(*arrays(2), range(3))
    assert problem.seeds == (0, 1, 2) and problem.data.classes == 2 and problem.sizes(6) == (D, 6, 1)


def test_the_table_says_which_preconditions_held_and_one_warning_line_which_failed(case):
    classes, batch, data, store, table = case
    assert (table["fitted"] == ~table["hit cap"] & ~table["diverged"]).all()
    later = table["experiment"] != "Exp 1"
    assert (table.loc[later, "phase-1 fitted"] == ~table.loc[later, "phase-1 hit cap"]).all()
    assert table.loc[~later, "phase-1 fitted"].isna().all()
    with pytest.warns(UserWarning) as caught:
        again = byo.experiments(*data, WIDTHS, SEEDS, batch_size=batch, name="mine", store=store, **RUN)
    assert [str(w.message) for w in caught] == ["badminima: " + byo.preconditions_failed(again)]
    assert "\n" not in str(caught[0].message) and "phase 1 did not reach zero training error" in str(caught[0].message)
    held = table.assign(fitted=True)
    held.loc[later, "phase-1 fitted"] = True
    assert byo.preconditions_failed(held) == ""


def test_a_run_that_diverges_is_in_the_table_as_diverged_and_the_warning_says_so(tmp_path):
    with pytest.warns(UserWarning, match=r"diverged \(non-finite loss\)"):
        table = byo.experiments(*arrays(2), (4,), (0,), lr=1e30, max_steps=50, store=Store(tmp_path))
    assert table["diverged"].all() and not table["fitted"].any() and not table["hit cap"].any()
    assert table["steps"].isna().all()
