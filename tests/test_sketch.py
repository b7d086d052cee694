import pytest

from badminima.paper_a import sketch
from badminima.core.config import ParameterError
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
