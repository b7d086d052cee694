import pytest
import torch

from badminima.paper_a import sketch
from badminima.core.config import ParameterError
from badminima.core.models import member_params
from badminima.core.store import Store


def test_smoke_run_is_stored_and_not_retrained(tmp_path, monkeypatch):
    cfg = sketch.config_for("smoke", max_epochs=5)
    first = sketch.run_sketch(cfg, Store(tmp_path))
    table = sketch.sketch_table(first)
    assert len(table) == 4 * len(cfg.seeds)
    assert set(table.columns) >= {"train acc %", "test acc %", "margin", "distance from init", "epochs to 100%"}
    assert len(list((tmp_path / "sketch").iterdir())) == 4
    monkeypatch.setattr(sketch, "train", lambda *a, **k: pytest.fail("retrained"))
    again = sketch.sketch_table(sketch.run_sketch(cfg, Store(tmp_path)))
    assert again.equals(table)


def test_bad_parameters_name_themselves():
    with pytest.raises(ParameterError, match="scale='huge' is not allowed"):
        sketch.config_for("huge")
    with pytest.raises(ParameterError, match="seeds='0,1' must be a non-empty list"):
        sketch.config_for("smoke", seeds="0,1")
    with pytest.raises(ParameterError, match=r"lr=-1 is out of range"):
        sketch.config_for("cpu", lr=-1)


def test_the_four_settings_are_wired_as_figure_1_says(tmp_path, monkeypatch):
    cfg = sketch.config_for("smoke", max_epochs=3)
    store, calls, setting = Store(tmp_path), {}, []
    load_or_run = store.load_or_run
    monkeypatch.setattr(store, "load_or_run", lambda kind, key, *a, **k: setting.append(key["setting"]) or
                        load_or_run(kind, key, *a, **k))
    real_train = sketch.train

    def spy(model, train_set, tcfg, seeds, **kw):
        calls[setting[-1]] = {"start": member_params(model).clone(), "train_set": train_set, "cfg": tcfg, **kw}
        return real_train(model, train_set, tcfg, seeds, **kw)

    monkeypatch.setattr(sketch, "train", spy)
    result = sketch.run_sketch(cfg, store)
    s = result.settings
    assert sorted(calls) == [1, 2, 3, 4]

    # Settings 1 and 2 start from one random init; 3 and 4 from the weights setting 2 ended with.
    assert torch.equal(calls[1]["start"], calls[2]["start"])
    trained_2 = member_params(s[2].model)
    assert not torch.equal(trained_2, calls[2]["start"]), "setting 2 trained"
    for n in (3, 4):
        assert torch.equal(calls[n]["start"], trained_2) and torch.equal(s[n].init, trained_2)

    # Setting 2 fits random labels on the true points: about half disagree with the true labels.
    x2, y2 = calls[2]["train_set"]
    assert torch.equal(x2, result.x) and torch.equal(y2, s[2].labels)
    assert 0.3 < float((y2 != result.y).float().mean()) < 0.7
    for n in (1, 3):
        assert torch.equal(calls[n]["train_set"][0], result.x) and torch.equal(calls[n]["train_set"][1], result.y)

    # Only setting 4 adds momentum and l2, on the clean points plus two noisy copies of each...
    for n in (1, 3):
        assert calls[n]["cfg"].momentum == 0 and calls[n]["cfg"].weight_decay == 0 and calls[n]["cfg"].lr == cfg.lr
    assert calls[2]["cfg"].lr == cfg.lr_random_labels
    assert calls[4]["cfg"].momentum == cfg.momentum > 0 and calls[4]["cfg"].weight_decay == cfg.weight_decay > 0
    x4, y4 = calls[4]["train_set"]
    n_points = result.x.shape[1]
    assert x4.shape[1] == 3 * n_points and torch.equal(x4[:, :n_points], result.x)
    assert torch.equal(y4, result.y.repeat(1, 3))
    jitter = x4[:, n_points:] - result.x.repeat(1, 2, 1)
    assert float(jitter.std()) == pytest.approx(cfg.noise, rel=0.1)
    # ... and, like the others on the true labels, is judged on the clean set.
    assert calls[4]["fit_set"][0] is result.x and calls[4]["fit_set"][1] is result.y
    assert all(calls[n]["fit_set"] is None for n in (1, 2, 3)), "the others are judged on what they train on"
    assert torch.equal(s[4].labels, result.y) and torch.equal(s[3].labels, result.y)
    for n in (1, 2, 3, 4):
        assert calls[n]["test_set"][0] is result.x_test and calls[n]["test_set"][1] is result.y_test


def test_a_diverged_setting_is_neither_fitted_nor_at_its_cap(tmp_path):
    cfg = sketch.config_for("smoke", max_epochs=5, lr=1e30)   # settings 1, 3 and 4 train at this step
    table = sketch.sketch_table(sketch.run_sketch(cfg, Store(tmp_path)))
    lost = table[table["setting"].isin([1, 3, 4])]
    assert lost["diverged"].all() and not lost["hit cap"].any() and lost["epochs to 100%"].isna().all()
    assert sketch.summary(table).loc[(1, sketch.SETTINGS[1]), ("diverged", "runs")] == len(cfg.seeds)
