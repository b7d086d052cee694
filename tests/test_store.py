import pytest
import torch

from badminima.core.store import Store


def test_saves_once_then_loads(tmp_path):
    store = Store(tmp_path)
    calls = []

    def run(workdir):
        calls.append(workdir)
        return {"acc": 0.5}, {"w": torch.arange(3.0)}

    first = store.load_or_run("demo", {"lr": 0.1, "seeds": (0, 1)}, run)
    again = store.load_or_run("demo", {"seeds": [0, 1], "lr": 0.1}, run)
    assert len(calls) == 1
    assert again.metrics == {"acc": 0.5} and torch.equal(again.weights["w"], torch.arange(3.0))
    assert first.config == again.config == {"lr": 0.1, "seeds": [0, 1]}
    store.load_or_run("demo", {"lr": 0.2, "seeds": (0, 1)}, run)
    assert len(calls) == 2, "another configuration is another run"


def test_a_failed_run_leaves_no_result_and_keeps_its_workdir(tmp_path):
    store = Store(tmp_path)

    def boom(workdir):
        (workdir / "train.ckpt").write_text("half way")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.load_or_run("demo", {"a": 1}, boom)
    assert store.load("demo", {"a": 1}) is None
    partial = store.path("demo", {"a": 1}).with_name(store.path("demo", {"a": 1}).name + ".partial")
    assert (partial / "train.ckpt").read_text() == "half way", "the checkpoint survives for a resume"
    seen = []
    store.load_or_run("demo", {"a": 1}, lambda w: (seen.append((w / "train.ckpt").exists()), ({}, {}))[1])
    assert seen == [True]


def test_corrupted_weights_are_detected(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, lambda w: ({}, {"w": torch.ones(2)}))
    (store.path("demo", {"a": 1}) / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="checksum"):
        store.load("demo", {"a": 1})
