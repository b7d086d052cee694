"""Paper A's main grid on a network and images of the test's own (badminima.paper_a.byo): an MLP over the flattened
pixels of 3 x 12 x 12 images of 3 classes, sizes no chapter uses, at the smoke scale's few epochs."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from badminima.core import convnets
from badminima.core.config import ParameterError
from badminima.core.data import images
from badminima.core.store import NotStored, ReadOnlyStore, Store
from badminima.paper_a import byo, protocol
from badminima.paper_a.experiments import MODES

SHAPE = (3, 12, 12)
CLASSES = 3
SEEDS = (0, 1)
CFG = protocol.config_for("smoke", batch_size=8, phase1_epochs=3)
COLUMNS = ["model", "seed", "init", "mode", "train acc %", "test acc %", "epochs", "last-quarter change", "hit cap",
           "fitted", "diverged", "phase-1 acc %", "phase-1 fitted", "augmentation"]


def mlp(classes: int, in_channels: int, hidden: int = 16, act: type[nn.Module] = nn.ReLU) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * SHAPE[1] * SHAPE[2], hidden), act(),
                         nn.Linear(hidden, classes))


def arrays(n: int = 30, n_test: int = 15) -> dict:
    """Random pixels with a brighter row per class, so the labels can be learnt."""
    rng = np.random.default_rng(0)
    out = {}
    for split, count in (("train", n), ("test", n_test)):
        y = np.arange(count) % CLASSES
        x = rng.integers(0, 120, (count, *SHAPE)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, :, 2 + 3 * c] = 240
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return out


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    data = arrays()
    with pytest.warns(UserWarning) as caught:   # at smoke scale's few epochs phase 1 cannot fit its random labels
        table = byo.experiments(mlp, **data, seeds=list(SEEDS), cfg=CFG, name="tiny mlp", store=Store(root))
    return root, data, table, [str(w.message) for w in caught]


def test_the_table_carries_each_runs_preconditions_and_one_warning_says_which_failed(first):
    _, _, table, warned = first
    adversarial = table["init"] == "adversarial"
    assert table.loc[adversarial, "phase-1 acc %"].between(0, 100).all()
    assert table.loc[adversarial, "phase-1 fitted"].eq(table.loc[adversarial, "phase-1 acc %"] >= 99.99).all()
    assert (table["fitted"] == (table["train acc %"] >= 100)).all() and not table["diverged"].any()
    assert len(warned) == 1 and "\n" not in warned[0] and warned[0] == "badminima: " + byo.preconditions_failed(table)
    seeds_short = int((~table.loc[adversarial].drop_duplicates("seed")["phase-1 fitted"].astype(bool)).sum())
    assert f"phase 1 missed Algorithm 1's stopping rule (99.99% on its random labels) for {seeds_short} of 2 seeds" \
        in warned[0]
    assert set(table.loc[table["mode"] == "SOTA", "augmentation"]) == {"crop (padding 2) + flip"}, "12 px: 2"
    assert set(table.loc[table["mode"] == "vanilla", "augmentation"]) == {"none"}


def test_a_table_whose_preconditions_all_held_warns_nothing(first):
    _, _, table, _ = first
    held = table.assign(fitted=True)
    held.loc[held["phase-1 fitted"].notna(), "phase-1 fitted"] = True
    assert byo.preconditions_failed(held) == ""
    lost = held.assign(diverged=held.index == 0)
    assert byo.preconditions_failed(lost).startswith("preconditions failed: 1 diverged (non-finite loss)")


def test_without_flips_only_the_augmented_runs_change_and_the_table_says_so(first, tmp_path):
    root, data, table, _ = first
    args = dict(seeds=SEEDS, cfg=CFG, name="tiny mlp")
    flipping = byo._grid(mlp, data["x_train"], data["y_train"], data["x_test"], data["y_test"], SEEDS, CFG,
                         "tiny mlp", True)
    plain = byo._grid(mlp, data["x_train"], data["y_train"], data["x_test"], data["y_test"], SEEDS, CFG,
                      "tiny mlp", False)
    for (labels, a), (_, b) in zip(flipping, plain):
        assert (a == b) == (labels["mode"] == "vanilla"), "vanilla does not augment: its runs are shared"
    with pytest.raises(NotStored, match=f"{2 * len(SEEDS)} of {4 * len(SEEDS)} runs"):
        byo.experiments(mlp, **data, **args, flip=False, store=ReadOnlyStore(root))


def test_the_table_has_the_chapters_columns_and_one_row_per_seed_init_and_mode(first):
    _, _, table, _ = first
    assert list(table.columns) == COLUMNS
    assert len(table) == 4 * len(SEEDS)
    assert sorted(table.groupby(["seed", "init", "mode"]).size().index) == sorted(
        (s, i, m) for s in SEEDS for i in protocol.INITS for m in MODES)
    assert set(table.model) == {"tiny mlp"}
    for column in ("train acc %", "test acc %"):
        assert table[column].between(0, 100).all()
    vanilla = table["mode"] == "vanilla"
    assert table.loc[vanilla, "epochs"].between(1, CFG.vanilla_cap).all()
    assert (table.loc[~vanilla, "epochs"] == CFG.epochs).all()


def test_phase1_runs_once_per_seed_from_the_factorys_network_at_that_seed(first):
    root, _, _, _ = first
    entries = [e for e in Store(root).entries() if e.status == "complete"]
    assert sum(e.kind == "image" for e in entries) == 4 * len(SEEDS)
    phase1 = [e for e in entries if e.kind == "adversarial"]
    assert sorted(e.config["seed"] for e in phase1) == list(SEEDS)
    for entry in phase1:
        weights = torch.load(entry.path / "weights.pt", weights_only=True)
        torch.manual_seed(entry.config["seed"])
        for key, value in mlp(CLASSES, SHAPE[0]).state_dict().items():
            assert torch.equal(weights[f"init.{key}"], value)
            assert not torch.equal(weights[f"final.{key}"], value), "phase 1 trained every layer"


def test_a_second_call_loads_the_same_table_from_a_read_only_store(first):
    root, data, table, _ = first
    as_torch = {k: torch.from_numpy(v) for k, v in data.items()}
    with pytest.warns(UserWarning):
        again = byo.experiments(mlp, **as_torch, seeds=np.array(SEEDS), cfg=CFG, name="tiny mlp",
                                store=ReadOnlyStore(root))
    pd.testing.assert_frame_equal(again, table)


def changed(key: str, index: tuple) -> dict:
    data = arrays()
    data[key][index] = (int(data[key][index]) + 1) % (CLASSES if key.startswith("y") else 256)
    return data


OTHERS = {
    "a training pixel": (mlp, changed("x_train", (4, 1, 5, 7)), "tiny mlp"),
    "a test pixel": (mlp, changed("x_test", (0, 0, 0, 0)), "tiny mlp"),
    "a test label": (mlp, changed("y_test", (2,)), "tiny mlp"),
    "a wider hidden layer": (lambda k, c: mlp(k, c, hidden=17), arrays(), "tiny mlp"),
    "another activation, the same shapes": (lambda k, c: mlp(k, c, act=nn.Tanh), arrays(), "tiny mlp"),
    "another name": (mlp, arrays(), "tiny mlp 2"),
}


@pytest.mark.parametrize("factory, data, name", OTHERS.values(), ids=OTHERS.keys())
def test_other_data_or_another_architecture_does_not_load_the_first_results(first, factory, data, name):
    root, _, _, _ = first
    with pytest.raises(NotStored):
        byo.experiments(factory, **data, seeds=SEEDS, cfg=CFG, name=name, store=ReadOnlyStore(root))


def test_registered_names_stay_out_of_the_chapters(first):
    assert convnets.NAMES == tuple(convnets.ARCHITECTURES) == ("vgg16", "resnet18", "resnet50", "densenet40")
    assert set(images.LOADERS) == {"fashion_mnist", "mnist", "cifar10", "cifar100", "cinic10", "restricted_imagenet"}
    with pytest.raises(ParameterError, match=r"^name='resnet18' is a built-in architecture"):
        convnets.register("resnet18", mlp)
    x = torch.zeros(2, *SHAPE, dtype=torch.uint8)
    with pytest.raises(ParameterError, match=r"^name='mnist' is a built-in data set"):
        images.register_arrays("mnist", x, torch.arange(2), x, torch.arange(2), 2)


def no_output(classes: int, in_channels: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * SHAPE[1] * SHAPE[2], classes + 1))


def one_channel_constant() -> np.ndarray:
    x = arrays()["x_train"].copy()
    x[:, 1] = 7
    return x


BAD = [
    (dict(y_train=np.zeros(29, dtype=int)), r"y_train=array of shape \(29,\) does not fit x_train; allowed: shape "
                                            r"\(30,\)"),
    (dict(y_train=np.zeros((30, 1), dtype=int)), r"y_train=array of shape \(30, 1\) does not fit x_train"),
    (dict(y_test=np.full(15, 0.5)), r"y_test=array of dtype float64 holds values that are not whole numbers"),
    (dict(y_train=np.arange(30) % 3 * 2), r"y_train=array of labels \[0, 2, 4\] is not labelled 0 \.\. k-1"),
    (dict(y_test=np.full(15, 5)), r"y_test=array with labels \[5\] outside y_train's classes; allowed: labels "
                                  r"0 \.\. 2"),
    (dict(x_train=arrays()["x_train"].astype(np.float32)), r"x_train=array of dtype float32 is not allowed; allowed: "
                                                           r"uint8 images"),
    (dict(x_train=arrays()["x_train"][:, 0]), r"x_train=array of shape \(30, 12, 12\) is not allowed; allowed: "
                                              r"images of shape \(N, C, H, W\)"),
    (dict(x_test=arrays()["x_test"][:, :1]), r"x_test=array of shape \(15, 1, 12, 12\) does not fit x_train; "
                                             r"allowed: images of shape \(3, 12, 12\)"),
    (dict(x_train=arrays()["x_train"].transpose(0, 2, 3, 1)),
     r"x_train=array of shape \(30, 12, 12, 3\) looks channels-last \(N, H, W, C\); allowed: channels-first images "
     r"\(N, C, H, W\)"),
    (dict(x_train=arrays()["x_train"][:, :, :3, :3]),
     r"x_train=array of shape \(30, 3, 3, 3\) looks ambiguous \(its channel axis is as long as its width\); "
     r"allowed: channels-first images \(N, C, H, W\)"),
    (dict(flip="yes"), r"flip='yes' is not allowed; allowed: True or False"),
    (dict(x_train="pixels"), r"x_train=str is not an array of numbers"),
    (dict(x_train=one_channel_constant()), r"x_train=array whose channel 1 holds the value 7 in every pixel"),
    (dict(seeds=[-1]), r"seeds=\[-1\] is not allowed; allowed: a non-empty list of distinct non-negative"),
    (dict(seeds=np.array([0, 0])), r"seeds=array\(\[0, 0\]\) is not allowed"),
    (dict(cfg={"R": 2}), r"cfg=dict is not allowed; allowed: a badminima\.paper_a\.protocol\.PaperAConfig"),
    (dict(name=""), r"name='' is not allowed; allowed: a non-empty string"),
    (dict(model_factory=3), r"model_factory=3 is not callable; allowed: a function \(classes, in_channels\)"),
    (dict(model_factory=lambda k, c: "net"), r"model_factory=<lambda> returned str from model_factory\(3, 3\), not "
                                             r"a torch\.nn\.Module"),
    (dict(model_factory=lambda k: mlp(k, 3)), r"model_factory=<lambda> raised TypeError \(.*\) as "
                                              r"model_factory\(3, 3\)"),
    (dict(model_factory=lambda k, c: nn.Flatten()), r"model_factory=<lambda> returned a network without trainable "
                                                    r"parameters"),
    (dict(model_factory=lambda k, c: nn.Linear(3, k)), r"model_factory=<lambda> returned a network that raised "
                                                       r"RuntimeError"),
    (dict(model_factory=no_output), r"model_factory=no_output returned a network whose output for images of shape "
                                    r"\(2, 3, 12, 12\) is shape \(2, 4\); allowed: logits of shape \(2, 3\)"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m.split("=")[0] + f" {i}" for i, (_, m) in enumerate(BAD)])
def test_bad_arguments_fail_with_one_line_naming_them(tmp_path, change, message):
    args = {**dict(model_factory=mlp, **arrays(), seeds=SEEDS, cfg=CFG, name="tiny mlp"), **change}
    with pytest.raises(ParameterError, match="^" + message) as err:
        byo.experiments(**args, store=ReadOnlyStore(tmp_path))
    assert "\n" not in str(err.value)
    assert err.value.name == next(iter(change))
