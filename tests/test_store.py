import contextlib
import dataclasses
import io
import json
import os
import gzip
import shutil
import tempfile
import logging
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from badminima.book import store_commands
from badminima.book.cli import main
from badminima.core import layout, runtime
from badminima.core.journal import check as check_journal
from badminima.core import store as store_module
from badminima.core.config import ParameterError, config_key
from badminima.core.data import images
from badminima.core.store import CorruptEntry, DataMismatch, NotStored, ReadOnlyStore, Store


def counting(calls: list, metrics: dict | None = None, weights: dict | None = None):
    def run(workdir):
        calls.append(workdir)
        return metrics or {"acc": 0.5}, weights or {"w": torch.arange(3.0)}
    return run


def test_saves_once_then_loads(tmp_path):
    store = Store(tmp_path)
    calls = []
    first = store.load_or_run("demo", {"lr": 0.1, "seeds": (0, 1)}, counting(calls))
    again = store.load_or_run("demo", {"seeds": [0, 1], "lr": 0.1}, counting(calls))
    assert len(calls) == 1
    assert again.metrics == {"acc": 0.5} and torch.equal(again.weights["w"], torch.arange(3.0))
    assert first.config == again.config == {"lr": 0.1, "seeds": [0, 1]}
    store.load_or_run("demo", {"lr": 0.2, "seeds": (0, 1)}, counting(calls))
    assert len(calls) == 2, "another configuration is another run"
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(
        [store.key({"lr": 0.1, "seeds": [0, 1]}), store.key({"lr": 0.2, "seeds": [0, 1]})]), "no lock or tmp left"


@dataclasses.dataclass(frozen=True)
class Inner:
    width: float
    sizes: tuple


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: Inner
    flag: bool = False


def test_equal_values_give_one_key():
    assert config_key({"width": 1}) == config_key({"width": 1.0}) == config_key({"width": np.float64(1.0)})
    assert config_key({"sizes": [1, 2]}) == config_key({"sizes": (1.0, 2)})
    assert config_key(Outer(Inner(1, (2, 3)))) == config_key(Outer(Inner(1.0, [2.0, 3])))
    assert config_key({"run": Outer(Inner(1, ()))}) == config_key({"run": {"inner": {"width": 1.0, "sizes": []},
                                                                          "flag": False}})
    assert config_key({"width": 1}) != config_key({"width": 1.5})
    assert config_key({"flag": True}) != config_key({"flag": 1}), "a bool is not a number"
    assert config_key({"flag": False}) != config_key({"flag": 0})
    assert config_key({"w": 1e-4}) != config_key({"w": 1e-5})


def test_an_int_and_an_integral_float_share_one_stored_result(tmp_path):
    store, calls = Store(tmp_path), []
    store.load_or_run("demo", Outer(Inner(1, (2,))), counting(calls))
    store.load_or_run("demo", Outer(Inner(1.0, [2.0])), counting(calls))
    assert len(calls) == 1


def test_the_store_format_is_part_of_every_key(tmp_path, monkeypatch):
    store, calls = Store(tmp_path), []
    old = store.path("demo", {"a": 1})
    store.load_or_run("demo", {"a": 1}, counting(calls))
    monkeypatch.setattr(store_module, "FORMAT", store_module.FORMAT + 1)
    assert store.path("demo", {"a": 1}) != old
    assert store.load("demo", {"a": 1}) is None
    store.load_or_run("demo", {"a": 1}, counting(calls))
    assert len(calls) == 2, "a new format retires the old result"


def test_a_result_from_other_data_is_never_returned(tmp_path):
    store, calls = Store(tmp_path), []
    original = {"dataset": "mnist", "folder": "/data/a", "sha256": "1" * 64}
    store.load_or_run("demo", {"a": 1}, counting(calls), data=original)
    copy = {**original, "folder": "/elsewhere"}
    assert store.load_or_run("demo", {"a": 1}, counting(calls), data=copy).metrics == {"acc": 0.5}
    other = {**original, "folder": "/data/b", "sha256": "2" * 64}
    with pytest.raises(DataMismatch) as err:
        store.load_or_run("demo", {"a": 1}, counting(calls), data=other)
    assert len(calls) == 1
    message = str(err.value)
    assert "\n" not in message and "/data/a" in message and "/data/b" in message and "store rm" in message
    with pytest.raises(DataMismatch):
        ReadOnlyStore(tmp_path).load("demo", {"a": 1}, data=other)
    assert store.load("demo", {"a": 1}, data=original) is not None, "the stored result is left as it was"


def write_mnist(folder: Path, pixels: int, gzipped: bool) -> None:
    folder.mkdir(parents=True)
    for split, n in (("train", 20), ("t10k", 10)):
        x = np.full((n, 28, 28), pixels, np.uint8)
        y = np.arange(n, dtype=np.uint8) % 10
        for stem, array, magic in ((f"{split}-images-idx3-ubyte", x, 0x803), (f"{split}-labels-idx1-ubyte", y, 0x801)):
            body = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
            if gzipped:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(body))
            else:
                (folder / stem).write_bytes(body)


def test_the_data_fingerprint_follows_the_images_not_the_folder(tmp_path):
    write_mnist(tmp_path / "a" / "mnist", 7, gzipped=True)
    write_mnist(tmp_path / "b" / "mnist", 7, gzipped=False)
    write_mnist(tmp_path / "c" / "mnist", 8, gzipped=True)
    a, b, c = (images.fingerprint("mnist", tmp_path / name) for name in "abc")
    assert a["sha256"] == b["sha256"] and a["folder"] != b["folder"], "the same images, stored differently"
    assert a["sha256"] != c["sha256"], "one pixel value changed"
    assert (a["train"], a["test"]) == (20, 10)
    store, calls = Store(tmp_path / "results"), []
    store.load_or_run("demo", {"a": 1}, counting(calls), data=a)
    store.load_or_run("demo", {"a": 1}, counting(calls), data=b)
    with pytest.raises(DataMismatch):
        store.load_or_run("demo", {"a": 1}, counting(calls), data=c)
    assert len(calls) == 1


def slow_run(root: str) -> dict:
    """Run in a spawned process: the computation takes long enough for the other process to ask meanwhile."""
    def run(workdir):
        with open(Path(root) / "calls.txt", "a") as f:
            f.write("called\n")
        (workdir / "train.ckpt").write_text("checkpoint")
        time.sleep(2)
        return {"acc": 0.75}, {"w": torch.ones(4)}
    return Store(Path(root) / "results").load_or_run("demo", {"shared": True}, run).metrics


def test_two_processes_asking_for_one_result_compute_it_once(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(slow_run, [str(tmp_path)] * 2)
    assert results == [{"acc": 0.75}] * 2
    assert (tmp_path / "calls.txt").read_text() == "called\n"
    entry = Store(tmp_path / "results").path("demo", {"shared": True})
    assert [p.name for p in entry.parent.iterdir()] == [entry.name], "no lock, partial or tmp file left"
    assert sorted(p.name for p in entry.iterdir()) == ["config.json", "manifest.json", "metrics.json", "weights.pt"]


def test_a_failed_run_keeps_its_checkpoints_for_a_resume(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(RuntimeError):
        store.load_or_run("demo", {"a": 1}, killed_after_a_checkpoint)
    assert store.load("demo", {"a": 1}) is None
    partial = store.path("demo", {"a": 1}).with_name(store.key({"a": 1}) + ".partial")
    assert (partial / "train.ckpt").read_text() == "half way", "the checkpoint survives for a resume"
    assert [e.status for e in store.entries()] == ["partial"]
    seen = []
    store.load_or_run("demo", {"a": 1}, lambda w: (seen.append((w / "train.ckpt").exists()), ({}, {}))[1])
    assert seen == [True]
    assert not partial.exists() and not list((tmp_path / "demo").glob("*.ckpt"))


def test_a_failed_run_without_checkpoints_leaves_nothing(tmp_path):
    def boom(workdir):
        raise RuntimeError("bad input")

    with pytest.raises(RuntimeError):
        Store(tmp_path).load_or_run("demo", {"a": 1}, boom)
    assert list((tmp_path / "demo").iterdir()) == []


def damage(path: Path, how: str) -> None:
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    else:  # one byte changed: the file still parses, only its checksum tells
        data = bytearray(path.read_bytes())
        data[-2] ^= 1
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["config.json", "metrics.json", "weights.pt", "manifest.json"])
@pytest.mark.parametrize("how", ["missing", "truncated", "flipped"])
def test_a_damaged_result_is_moved_aside_and_recomputed(tmp_path, caplog, name, how):
    store, calls = Store(tmp_path), []
    store.load_or_run("demo", {"a": 1}, counting(calls))
    entry = store.path("demo", {"a": 1})
    damage(entry / name, how)
    with caplog.at_level(logging.WARNING):
        again = store.load_or_run("demo", {"a": 1}, counting(calls))
    assert len(calls) == 2 and again.metrics == {"acc": 0.5}
    aside = list(tmp_path.glob("demo/*.corrupt-*"))
    assert len(aside) == 1 and (aside[0] / name).exists() != (how == "missing")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(entry) in warnings[0] and aside[0].name in warnings[0]
    assert "\n" not in warnings[0]
    assert main(["store", "verify", "--results", str(tmp_path)]) == 0, "the recomputed result passes"


def test_a_read_only_store_reports_damage_and_computes_nothing(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    damage(store.path("demo", {"a": 1}) / "weights.pt", "flipped")
    reader = ReadOnlyStore(tmp_path)
    with pytest.raises(CorruptEntry, match="weights.pt fails its checksum"):
        reader.load_or_run("demo", {"a": 1}, lambda w: pytest.fail("computed"))
    with pytest.raises(NotStored):
        reader.load_or_run("demo", {"a": 2}, lambda w: pytest.fail("computed"))
    assert [p.name for p in (tmp_path / "demo").iterdir()] == [store.key({"a": 1})], "nothing moved"


def fill(root: Path) -> Store:
    store = Store(root)
    store.load_or_run("image", {"data": {"dataset": "mnist"}, "model": "resnet18", "width": 0.5, "seed": 3},
                      counting([]))
    store.load_or_run("widths", {"group": "start", "width": 8}, counting([]))
    with pytest.raises(RuntimeError):
        store.load_or_run("widths", {"group": "retrain", "width": 8}, killed_after_a_checkpoint)
    return store


def killed_after_a_checkpoint(workdir: Path):
    (workdir / "train.ckpt").write_text("half way")
    raise RuntimeError("killed")


def test_store_list_shows_each_result(tmp_path, capsys):
    store = fill(tmp_path)
    assert main(["store", "list", "--results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    image = next(line for line in lines if line.startswith("image"))
    key = store.key({"data": {"dataset": "mnist"}, "model": "resnet18", "width": 0.5, "seed": 3})
    assert key in image and "complete" in image and "dataset=mnist model=resnet18 width=0.5 seed=3" in image
    assert any("partial" in line and "group=retrain" in line for line in lines)


def test_store_verify_fails_on_a_bad_checksum(tmp_path, capsys):
    store = fill(tmp_path)
    assert main(["store", "verify", "--results", str(tmp_path)]) == 0
    assert "2 stored results checked" in capsys.readouterr().out
    bad = store.path("widths", {"group": "start", "width": 8})
    damage(bad / "metrics.json", "flipped")
    assert main(["store", "verify", "--results", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"FAILED widths/{bad.name}: metrics.json fails its checksum ({bad})"
    assert out[1].endswith("1 failed")
    assert (bad / "metrics.json").exists(), "verify only reports"


def test_store_rm_removes_what_is_selected_and_refuses_everything(tmp_path, capsys):
    store = fill(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["store", "rm", "--results", str(tmp_path)]) == 2
    assert "needs --kind or --key" in capsys.readouterr().err
    assert main(["store", "rm", "--results", str(tmp_path), "--key", "zzz"]) == 1
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert main(["store", "rm", "--results", str(tmp_path), "--kind", "widths"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert [e.kind for e in store.entries()] == ["image"]
    key = store.entries()[0].key
    assert main(["store", "rm", "--results", str(tmp_path), "--kind", "image", "--key", key[:6]]) == 0
    assert store.entries() == []


def tree(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() if p.is_file() else None for p in root.rglob("*")}


def test_the_store_verbs_refuse_a_folder_that_is_not_a_store(tmp_path, capsys, monkeypatch):
    (tmp_path / "src" / "badminima").mkdir(parents=True)   # a project's own folders, two levels down
    (tmp_path / "src" / "badminima" / "core.py").write_text("x = 1\n")
    before = tree(tmp_path)
    for verb in (["rm", "--kind", "src"], ["list"], ["verify"]):
        assert main(["store", *verb, "--results", str(tmp_path)]) == 2
        assert capsys.readouterr().err == (f"badminima: --results={str(tmp_path)!r} is not a result store (it has "
                                           "no .badminima-store, which every store gets when it first stores a "
                                           "result); allowed: a folder badminima stored results in\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BADMINIMA_RESULTS", "")   # set but empty: once the current folder
    assert main(["store", "rm", "--kind", "src"]) == 2
    assert capsys.readouterr().err == ("badminima: BADMINIMA_RESULTS='' is empty; allowed: a folder path, or unset "
                                       "for ./results\n")
    assert main(["store", "list", "--results", ""]) == 2
    assert capsys.readouterr().err == "badminima: --results='' is empty; allowed: a folder path\n"
    assert tree(tmp_path) == before, "nothing of the folder was touched"


def test_rm_leaves_a_group_that_is_being_computed(tmp_path, capsys):
    """A packed group's work folder (<kind>-group/<key>.partial) is locked by the process computing it, under its
    own key, and rm checks that lock."""
    store, seen = Store(tmp_path), []

    def run(work, todo):
        assert main(["store", "rm", "--results", str(tmp_path), "--kind", "demo-group"]) == 1
        seen.append(capsys.readouterr().err)
        (work / "train.ckpt").write_text("checkpoint")
        return [({"acc": 1.0}, {}) for _ in todo]

    store.load_or_run_many("demo", [{"seed": 0}, {"seed": 1}], run)
    assert "is being computed by another process; not removed" in seen[0]
    assert [e.status for e in store.entries()] == ["complete", "complete"]


def test_a_field_added_later_keeps_the_keys_stored_before_it():
    from dataclasses import dataclass, field

    from badminima.core.config import ADDED_LATER

    @dataclass(frozen=True)
    class Before:
        width: int = 1

    @dataclass(frozen=True)
    class After:
        width: int = 1
        extra: int | None = field(default=None, metadata=ADDED_LATER)

    assert config_key(After()) == config_key(Before())
    assert config_key(After(extra=2)) != config_key(Before())


def rewrite(entry: Path, name: str, content: bytes) -> None:
    """Replace one file of a stored result and its checksum in the manifest, so only its shape can tell."""
    (entry / name).write_bytes(content)
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["sha256"][name] = layout.sha256(entry / name)
    (entry / "manifest.json").write_text(json.dumps(manifest))


def manifest_as(edit):
    def change(entry: Path) -> None:
        manifest = json.loads((entry / "manifest.json").read_text())
        (entry / "manifest.json").write_text(json.dumps(edit(manifest)))
    return change


def raw(content: str):
    return lambda entry: (entry / "manifest.json").write_text(content)


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


DAMAGE = {   # what is wrong -> the reason `store list` and `verify` give
    "manifest not JSON": (raw("{not json"), "manifest.json does not parse (JSONDecodeError)"),
    "manifest a list": (raw("[1, 2]"), "manifest.json holds a list, not an object"),
    "manifest a string": (raw('"sha256"'), "manifest.json holds a str, not an object"),
    "manifest null": (raw("null"), "manifest.json holds a NoneType, not an object"),
    "manifest empty object": (raw("{}"), "manifest.json has no format of the right type"),
    "sha256 a string": (manifest_as(lambda m: {**m, "sha256": "abc"}), "manifest.json has no sha256 of the right type"),
    "sha256 a list": (manifest_as(lambda m: {**m, "sha256": list(m["sha256"].values())}),
                      "manifest.json has no sha256 of the right type"),
    "a checksum missing": (manifest_as(lambda m: {**m, "sha256": {"config.json": m["sha256"]["config.json"]}}),
                           "manifest.json has no checksum for each of config.json, metrics.json, weights.pt"),
    "a checksum a number": (manifest_as(lambda m: {**m, "sha256": {**m["sha256"], "weights.pt": 7}}),
                            "manifest.json has no checksum for each of config.json, metrics.json, weights.pt"),
    "format a bool": (manifest_as(lambda m: {**m, "format": True}), "manifest.json has no format of the right type"),
    "stored missing": (manifest_as(lambda m: {k: v for k, v in m.items() if k != "stored"}),
                       "manifest.json has no stored of the right type"),
    "data a string": (manifest_as(lambda m: {**m, "data": "mnist"}), "manifest.json has no data of the right type"),
    "depends a string": (manifest_as(lambda m: {**m, "depends": "demo/x"}),
                         "manifest.json has a depends that is not a list of names"),
    "another key": (manifest_as(lambda m: {**m, "key": "0" * 16}),
                    f"manifest.json names another result (demo/{'0' * 16})"),
    "another kind": (manifest_as(lambda m: {**m, "kind": "image"}), "manifest.json names another result (image/"),
    "config not JSON": (lambda e: rewrite(e, "config.json", b"{"), "config.json does not parse (JSONDecodeError)"),
    "config a list": (lambda e: rewrite(e, "config.json", b"[1]"), "config.json holds a list, not an object"),
    "metrics a list": (lambda e: rewrite(e, "metrics.json", b"[]"),
                       'metrics.json is not an object with an object under "metrics"'),
    "metrics a number": (lambda e: rewrite(e, "metrics.json", b'{"metrics": 3}'),
                         'metrics.json is not an object with an object under "metrics"'),
    "weights truncated": (lambda e: rewrite(e, "weights.pt", (e / "weights.pt").read_bytes()[:40]),
                          "weights.pt does not parse ("),
    "weights a list": (lambda e: rewrite(e, "weights.pt", saved([torch.ones(2)])),
                       "weights.pt does not hold a dict of tensors"),
    "weights empty": (lambda e: rewrite(e, "weights.pt", b""), "weights.pt does not parse ("),
    "weights missing": (lambda e: (e / "weights.pt").unlink(), "weights.pt is missing"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_every_kind_of_damage_is_listed_set_aside_once_and_recomputed(tmp_path, caplog, capsys, case):
    how, reason = DAMAGE[case]
    store, calls = Store(tmp_path), []
    store.load_or_run("demo", {"a": 1}, counting(calls))
    store.load_or_run("demo", {"a": 2}, counting(calls))   # a good entry beside the damaged one
    entry = store.path("demo", {"a": 1})
    how(entry)
    damaged = tree(entry)
    assert main(["store", "list", "--results", str(tmp_path)]) == 0
    listed = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert " damaged " in listed[entry.name] and f"({reason}" in listed[entry.name]
    assert " complete " in listed[store.key({"a": 2})]
    assert main(["store", "verify", "--results", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"FAILED demo/{entry.name}: {reason}") and len(out) == 2
    assert out[1].endswith("2 stored results checked under " + str(tmp_path) + ": 1 failed")
    with caplog.at_level(logging.WARNING):
        again = store.load_or_run("demo", {"a": 1}, counting(calls))
    assert len(calls) == 3 and again.metrics == {"acc": 0.5}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and reason in warnings[0]
    aside = list(tmp_path.glob("demo/*.corrupt-*"))
    assert len(aside) == 1 and tree(aside[0]) == damaged, "the damaged files are kept as they were"
    assert main(["store", "verify", "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().out.endswith(": 0 failed\n")


def test_a_read_only_store_and_checksums_report_a_wrong_shape_manifest(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    entry = store.path("demo", {"a": 1})
    (entry / "manifest.json").write_text('["sha256"]')
    with pytest.raises(CorruptEntry, match="manifest.json holds a list"):
        ReadOnlyStore(tmp_path).load("demo", {"a": 1})
    with pytest.raises(CorruptEntry, match="manifest.json holds a list"):
        store.checksums("demo", entry.name)
    with pytest.raises(CorruptEntry, match="manifest.json holds a list"):
        store.files("demo", entry.name)
    with pytest.raises(NotStored):
        store.checksums("demo", "0" * 16)
    assert (entry / "manifest.json").read_text() == '["sha256"]', "a read leaves it where it is"


def test_adopt_refuses_files_of_the_wrong_shape(tmp_path):
    source = Store(tmp_path / "a")
    source.load_or_run("demo", {"a": 1}, counting([]))
    key = source.key({"a": 1})
    files = source.files("demo", key)
    target = Store(tmp_path / "b")
    with pytest.raises(CorruptEntry, match="manifest.json names another result"):
        target.adopt("image", key, files)
    assert not (tmp_path / "b" / "image" / key).exists() and not list((tmp_path / "b" / "image").iterdir())
    assert target.adopt("demo", key, files) and not target.adopt("demo", key, files)
    assert tree(tmp_path / "b" / "demo" / key) == tree(tmp_path / "a" / "demo" / key)


def test_the_store_lists_and_removes_only_what_it_wrote(tmp_path, capsys):
    store = fill(tmp_path)
    foreign = {tmp_path / "widths" / "notes": None, tmp_path / "widths" / "notes" / "a.txt": b"mine",
               tmp_path / "widths" / "readme.txt": b"mine too", tmp_path / "mine" / "0123456789abcdef.txt": b"x",
               tmp_path / "widths" / "0123456789abcdeg": None}
    for path, content in foreign.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if content is None else path.write_bytes(content)
    assert {(e.kind, e.status) for e in store.entries()} == {("image", "complete"), ("widths", "complete"),
                                                            ("widths", "partial")}
    assert main(["store", "rm", "--results", str(tmp_path), "--kind", "widths"]) == 0
    assert main(["store", "rm", "--results", str(tmp_path), "--kind", "mine"]) == 1
    assert all(path.exists() and (content is None or path.read_bytes() == content)
               for path, content in foreign.items())


def test_a_folder_in_a_results_place_without_a_manifest_is_damaged_not_complete(tmp_path, capsys):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    (store.path("demo", {"a": 1}) / "manifest.json").unlink()
    assert [(e.status, e.problem) for e in store.entries()] == [("damaged", "manifest.json is missing")]
    assert main(["store", "verify", "--results", str(tmp_path)]) == 1
    assert "1 stored results checked" in capsys.readouterr().out


@pytest.mark.parametrize("verb", [["list"], ["verify"], ["rm", "--kind", "demo"]])
def test_the_store_verbs_refuse_a_missing_folder_or_a_file(tmp_path, capsys, monkeypatch, verb):
    missing, file = tmp_path / "missing", tmp_path / "file"
    file.write_text("mine")
    for root, problem in ((missing, "does not exist"), (file, "is not a folder")):
        assert main(["store", *verb, "--results", str(root)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == (f"badminima: --results={str(root)!r} {problem}; allowed: a "
                                                       "folder badminima stored results in\n")
    monkeypatch.setenv("BADMINIMA_RESULTS", str(file))
    assert main(["store", *verb]) == 2
    assert capsys.readouterr().err == (f"badminima: BADMINIMA_RESULTS={str(file)!r} is not a folder; allowed: a "
                                       "folder badminima stored results in\n")
    assert not missing.exists() and file.read_text() == "mine"


def test_check_writable_names_the_root_and_what_is_wrong(tmp_path, monkeypatch):
    file = tmp_path / "file"
    file.write_text("mine")
    for root, problem in ((file, "is a regular file"), (file / "sub", f"is under {str(file)!r}, a regular file")):
        with pytest.raises(ParameterError) as err:
            Store(root).check_writable("--results")
        assert str(err.value) == f"--results={str(root)!r} {problem}; allowed: a folder this process can write"
    Store(tmp_path / "new" / "deeper").check_writable()   # made when it first stores
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path and writable(path, mode))
    monkeypatch.setenv("BADMINIMA_RESULTS", str(tmp_path / "new"))
    with pytest.raises(ParameterError, match=rf"^BADMINIMA_RESULTS='{tmp_path}/new' is under '{tmp_path}', which "
                                             "cannot be written; allowed"):
        Store().check_writable("--results")
    with pytest.raises(ParameterError, match=rf"^results='{tmp_path}' cannot be written; allowed"):
        Store(tmp_path).check_writable()
    assert file.read_text() == "mine" and not (tmp_path / "new").exists()


def test_train_refuses_a_results_file_before_any_work(tmp_path, capsys, monkeypatch):
    file = tmp_path / "file"
    file.write_text("mine")
    monkeypatch.setattr(images, "load", lambda *a, **k: pytest.fail("data read"))
    assert main(["train", "--scale", "smoke", "--per-class", "2", "--results", str(file)]) == 2
    assert capsys.readouterr().err == (f"badminima: --results={str(file)!r} is a regular file; allowed: a folder "
                                       "this process can write\n")
    monkeypatch.setenv("BADMINIMA_JOURNAL", str(tmp_path))
    assert main(["train", "--scale", "smoke", "--per-class", "2", "--results", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (f"badminima: BADMINIMA_JOURNAL={str(tmp_path)!r} is a folder; allowed: a "
                                       "file in an existing folder this process can write, or unset\n")
    assert file.read_text() == "mine" and not (tmp_path / "r").exists()


@pytest.mark.parametrize("journal, problem", [("{tmp}", "is a folder"), ("{tmp}/missing/j", "is not in an existing "
                                              "folder"), ("{tmp}/file/j", "is not in an existing folder")])
def test_a_bad_journal_is_refused_before_any_work(tmp_path, monkeypatch, journal, problem):
    (tmp_path / "file").write_text("mine")
    journal = journal.format(tmp=tmp_path)
    monkeypatch.setenv("BADMINIMA_JOURNAL", journal)
    store, calls = Store(tmp_path / "results"), []
    message = rf"^BADMINIMA_JOURNAL='{journal}' {problem}; allowed: a file in an existing folder"
    for ask in (lambda: store.load_or_run("demo", {"a": 1}, counting(calls)),
                lambda: store.load_or_run_many("demo", [{"a": 1}], lambda w, todo: calls.append(todo)),
                lambda: store.load("demo", {"a": 1}), lambda: ReadOnlyStore(tmp_path).load("demo", {"a": 1})):
        with pytest.raises(ParameterError, match=message):
            ask()
    assert calls == [] and not (tmp_path / "results").exists()
    monkeypatch.setenv("BADMINIMA_JOURNAL", str(tmp_path / "journal"))
    store.load_or_run("demo", {"a": 1}, counting(calls))
    key = store.key({"a": 1})
    assert (tmp_path / "journal").read_text() == f"trained demo {key}\nloaded demo {key}\n"


def compute_and_wait(root: str, started, proceed) -> None:
    """Run in a spawned process: holds one key's lock while computing it, then a group's (its keys' and the group
    work folder's) until it is killed."""
    store = Store(root)

    def one(workdir):
        (workdir / "train.ckpt").write_text("half way")
        started.set()
        proceed.wait(60)
        return {"acc": 1.0}, {}

    def group(work, todo):
        (work / "train.ckpt").write_text("group half way")
        started.set()
        time.sleep(60)

    store.load_or_run("single", {"seed": 0}, one)
    store.load_or_run_many("demo", [{"seed": 0}, {"seed": 1}, {"seed": 2}], group)


def rm(root: Path, *selection: str) -> int:
    return main(["store", "rm", "--results", str(root), *selection])


def test_rm_refuses_what_another_process_is_computing_and_a_killed_group_resumes(tmp_path, capsys):
    store = Store(tmp_path)
    store.load_or_run("demo", {"seed": 0}, counting([]))
    done = tree(tmp_path / "demo")
    context = multiprocessing.get_context("spawn")
    started, proceed = context.Event(), context.Event()
    child = context.Process(target=compute_and_wait, args=(str(tmp_path), started, proceed))
    child.start()
    try:
        assert started.wait(60)
        single = store.path("single", {"seed": 0}).with_name(store.key({"seed": 0}) + ".partial")
        assert rm(tmp_path, "--kind", "single") == 1
        assert capsys.readouterr().err == (f"badminima: single/{single.name} is being computed by another process; "
                                           "not removed\n")
        assert (single / "train.ckpt").read_text() == "half way"
        started.clear()
        proceed.set()
        assert started.wait(60)   # now inside the group: seeds 1 and 2 computed together, seed 0 locked meanwhile
        assert rm(tmp_path, "--kind", "demo") == 1
        assert "is being computed by another process" in capsys.readouterr().err
        assert {path: content for path, content in tree(tmp_path / "demo").items() if path.suffix != ".lock"} == done
        assert rm(tmp_path, "--kind", "demo-group") == 1
        [work] = (tmp_path / "demo-group").glob("*.partial")
        assert (work / "train.ckpt").read_text() == "group half way"
    finally:
        child.kill()
        child.join()
    assert store.load("single", {"seed": 0}).metrics == {"acc": 1.0}
    seen = []

    def resume(work, todo):
        seen.append((work, (work / "train.ckpt").read_text(), todo))
        return [({"acc": 0.25}, {}) for _ in todo]

    results = store.load_or_run_many("demo", [{"seed": 0}, {"seed": 1}, {"seed": 2}], resume)
    assert seen == [(work, "group half way", [1, 2])], "the killed group's checkpoint, despite its stale lock files"
    assert [r.metrics for r in results] == [{"acc": 0.5}, {"acc": 0.25}, {"acc": 0.25}]
    assert not (tmp_path / "demo-group").exists()
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(
        store.key({"seed": s}) for s in range(3)), "no lock, partial or work folder left"


class SlowToLock(Store):
    """Waits after taking each lock, so two processes asking for one group in two orders would deadlock unless the
    store takes the locks in one order."""

    @contextlib.contextmanager
    def _lock(self, path: Path, wait: bool = True):
        with super()._lock(path, wait) as held:
            time.sleep(0.2)
            yield held


def test_a_group_asked_for_in_two_orders_at_once_is_computed_once_without_deadlock(tmp_path):
    calls, results = [], {}

    def ask(order: tuple):
        def run(work, todo):
            calls.append([order[i] for i in todo])
            return [({"seed": order[i]}, {}) for i in todo]
        results[order] = SlowToLock(tmp_path).load_or_run_many("demo", [{"seed": s} for s in order], run)

    threads = [threading.Thread(target=ask, args=(order,), daemon=True) for order in ((0, 1, 2), (2, 1, 0))]
    for t in threads:   # flock locks two open files apart even in one process, as in two
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "deadlocked"
    assert len(calls) == 1 and sorted(calls[0]) == [0, 1, 2]
    assert [r.metrics["seed"] for r in results[(0, 1, 2)]] == [0, 1, 2]
    assert [r.metrics["seed"] for r in results[(2, 1, 0)]] == [2, 1, 0]


def test_a_lock_whose_folder_another_group_removes_between_creating_and_opening_it_is_retried(tmp_path, monkeypatch):
    # Two workers each finishing a group: one removes the emptied `<kind>-group` folder just after the other made it
    store, real_open, removed = Store(tmp_path), os.open, []

    def open_after_the_folder_went(path, *args, **kwargs):
        if str(path).endswith(layout.LOCK) and "-group" in str(path) and not removed:
            Path(path).parent.rmdir()
            removed.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(store_module.os, "open", open_after_the_folder_went)
    results = store.load_or_run_many("demo", [{"seed": 0}], lambda w, todo: [({"i": i}, {}) for i in todo])
    assert removed and [r.metrics for r in results] == [{"i": 0}]
    assert not (tmp_path / "demo-group").exists()


def test_a_configuration_given_twice_is_run_and_stored_once(tmp_path):
    store, todos = Store(tmp_path), []

    def run(work, todo):
        todos.append(todo)
        return [({"i": i}, {"w": torch.full((2,), float(i))}) for i in todo]

    a, b = {"seed": 0}, {"seed": 1}
    results = store.load_or_run_many("demo", [a, b, {"seed": 0.0}, b], run)
    assert todos == [[0, 1]]
    assert [r.metrics for r in results] == [{"i": 0}, {"i": 1}, {"i": 0}, {"i": 1}]
    assert torch.equal(results[2].weights["w"], torch.zeros(2))
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted([store.key(a), store.key(b)])
    assert [r.metrics for r in store.load_or_run_many("demo", [b, b], run)] == [{"i": 1}] * 2 and len(todos) == 1


def test_a_failed_group_keeps_its_checkpoints_for_the_same_group_only(tmp_path):
    store, seen = Store(tmp_path), []

    def fail(work, todo):
        raise RuntimeError("before any checkpoint")

    with pytest.raises(RuntimeError):
        store.load_or_run_many("demo", [{"seed": 0}, {"seed": 1}], fail)
    assert list((tmp_path / "demo-group").iterdir()) == [], "an empty work folder is not kept"

    def checkpoint_and_fail(work, todo):
        (work / "train.ckpt").write_text(str(todo))
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.load_or_run_many("demo", [{"seed": 0}, {"seed": 1}], checkpoint_and_fail)

    def look(work, todo):
        seen.append((work / "train.ckpt").exists())
        return [({}, {}) for _ in todo]

    store.load_or_run_many("demo", [{"seed": 1}], look)
    assert seen == [False], "another group has a work folder of its own"
    store.load_or_run_many("demo", [{"seed": 0}, {"seed": 1}], look)
    assert seen == [False, False], "seed 1 is stored: the group asked for is now another"
    [kept] = (tmp_path / "demo-group").glob("*.partial")
    assert (kept / "train.ckpt").read_text() == "[0, 1]"


def test_rm_refuses_a_result_others_were_computed_from(tmp_path, capsys):
    store = Store(tmp_path)
    start = {"group": "start", "width": 8}
    store.load_or_run("widths", start, counting([]))
    store.load_or_run("widths", {"group": "retrain", "start": start}, counting([]))   # holds its start whole

    def phase2(work, todo):
        phase1 = store.load_or_run_many("phase1", [{"seed": i} for i in todo], lambda w, t: [({}, {}) for _ in t])
        return [({"from": p.config}, {}) for p in phase1]

    store.load_or_run_many("phase2", [{"seed": 0}, {"seed": 1}], phase2)   # loads phase 1 while it computes
    manifest = json.loads((store.path("phase2", {"seed": 1}) / "manifest.json").read_text())
    phase1 = sorted(store.key({"seed": s}) for s in (0, 1))
    assert manifest["depends"] == [f"phase1/{key}" for key in phase1]
    before = tree(tmp_path)
    assert rm(tmp_path, "--kind", "phase1") == 1
    err = capsys.readouterr().err.splitlines()
    phase2 = ", ".join(sorted(f"phase2/{store.key({'seed': s})}" for s in (0, 1)))
    assert err == [f"badminima: phase1/{key} not removed: 2 stored result(s) were computed from it ({phase2}); "
                   "select them too, or pass --force" for key in phase1]
    start_key, retrain_key = store.key(start), store.key({"group": "retrain", "start": start})
    assert rm(tmp_path, "--key", start_key) == 1
    assert capsys.readouterr().err == (f"badminima: widths/{start_key} not removed: 1 stored result(s) were "
                                       f"computed from it (widths/{retrain_key}); select them too, or pass --force\n")
    assert tree(tmp_path) == before
    assert rm(tmp_path, "--key", retrain_key) == 0 and rm(tmp_path, "--key", start_key) == 0
    assert rm(tmp_path, "--kind", "phase1", "--force") == 0
    assert [e.kind for e in store.entries()] == ["phase2", "phase2"]


def entry(kind: str, key: str, config: dict | None, status: str = "complete", depends: tuple = (),
          kernels: str = "pinned") -> store_module.Entry:
    manifest = {"depends": list(depends), "kernels": kernels} if status == "complete" else None
    return store_module.Entry(kind, key, status, Path(kind, key), 0, 0.0, config, manifest)


def test_dependants_are_named_by_manifests_or_held_whole_with_the_same_kernels():
    start = {"group": "start", "width": 8}
    entries = [entry("widths", "a", start), entry("widths", "b", {"group": "retrain", "start": start}),
               entry("widths", "c", {"group": "sum", "starts": [{"x": 1}, start]}),
               entry("widths", "d", {"start": start}, kernels="host"),
               entry("widths", "e", {"start": start}, status="partial"),
               entry("image", "f", {"seed": 0}, depends=("adversarial/g", "image/f")),
               entry("adversarial", "g", {"seed": 0}), entry("image", "h", start)]
    found = store_commands.dependants(entries)
    assert {name: [e.key for e in those] for name, those in found.items()} == {
        "widths/a": ["b", "c"], "image/h": ["b", "c"], "adversarial/g": ["f"]}


def test_the_manifest_names_what_a_result_was_computed_from_and_nothing_more(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("base", {"a": 1}, counting([]))

    def run(workdir):
        store.load("base", {"a": 1})
        store.load_or_run("inner", {"b": 1}, lambda w: (store.load("base", {"a": 1}), ({}, {}))[1])
        return {}, {}

    store.load_or_run("outer", {"c": 1}, run)
    store.load("outer", {"c": 1})
    depends = {kind: json.loads((store.path(kind, cfg) / "manifest.json").read_text())["depends"]
               for kind, cfg in (("base", {"a": 1}), ("inner", {"b": 1}), ("outer", {"c": 1}))}
    assert depends == {"base": [], "inner": [f"base/{store.key({'a': 1})}"],
                       "outer": sorted([f"base/{store.key({'a': 1})}", f"inner/{store.key({'b': 1})}"])}


def test_each_folder_the_store_writes_is_listed_with_its_status(tmp_path, capsys):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    key = store.key({"a": 1})
    (tmp_path / "demo" / f"{key}.adopting").mkdir()   # an adoption killed before its rename
    (tmp_path / "demo" / key / "weights.pt").write_bytes(b"")
    assert store.load("demo", {"a": 1}) is None
    (tmp_path / "demo" / key / "config.json").mkdir(parents=True)
    assert sorted((e.status, e.problem) for e in store.entries()) == [
        ("corrupt", None), ("damaged", "manifest.json is missing"), ("partial", None)]
    assert main(["store", "list", "--results", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_checksums_and_a_file_that_cannot_be_read(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    path = store.path("demo", {"a": 1})
    assert store.checksums("demo", path.name) == {name: layout.sha256(path / name)
                                                  for name in layout.FILES}

    def unreadable(file):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(layout, "sha256", unreadable)
    assert store.problem(store.entries()[0]) == "config.json is unreadable (Permission denied)"


def test_adopt_refuses_files_that_pass_their_checksums_but_not_their_shapes(tmp_path):
    source = Store(tmp_path / "a")
    source.load_or_run("demo", {"a": 1}, counting([]))
    key = source.key({"a": 1})
    rewrite(tmp_path / "a" / "demo" / key, "metrics.json", b'{"metrics": [1]}')
    files = {name: (tmp_path / "a" / "demo" / key / name).read_bytes() for name in (*layout.FILES,
                                                                                    "manifest.json")}
    with pytest.raises(CorruptEntry, match='arrived damaged .metrics.json is not an object with an object'):
        Store(tmp_path / "b").adopt("demo", key, files)
    assert list((tmp_path / "b" / "demo").iterdir()) == []


def test_a_journal_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    journal = tmp_path / "journal"
    monkeypatch.setenv("BADMINIMA_JOURNAL", str(journal))
    check_journal()
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path and writable(path, mode))
    with pytest.raises(ParameterError, match=f"^BADMINIMA_JOURNAL='{journal}' cannot be written; allowed"):
        check_journal()
    monkeypatch.setenv("BADMINIMA_JOURNAL", "")
    check_journal()   # empty: no journal


def test_a_store_that_cannot_be_written_says_so_before_computing_and_still_reads(tmp_path, monkeypatch):
    file = tmp_path / "file"
    file.write_text("mine")
    calls = []
    for ask in (lambda: Store(file).load_or_run("demo", {"a": 1}, counting(calls)),
                lambda: Store(file / "sub").load_or_run_many("demo", [{"a": 1}], lambda w, todo: calls.append(1))):
        with pytest.raises(ParameterError, match=r"^results='.*' is (a regular file|under '.*', a regular file); "):
            ask()
    assert calls == [] and file.read_text() == "mine"
    Store(tmp_path / "results").load_or_run("demo", {"a": 1}, counting(calls))
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: "results" not in str(path) and writable(path, mode))
    reader = Store(tmp_path / "results")
    assert reader.load_or_run("demo", {"a": 1}, counting(calls)).metrics == {"acc": 0.5}, "a complete result reads"
    with pytest.raises(ParameterError, match=r"cannot be written"):
        reader.load_or_run("demo", {"a": 2}, counting(calls))
    assert len(calls) == 1


def test_rm_in_a_store_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    store = fill(tmp_path)
    before = tree(tmp_path)
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path and writable(path, mode))
    assert main(["store", "rm", "--results", str(tmp_path), "--kind", "widths"]) == 2
    assert capsys.readouterr().err == (f"badminima: --results={str(tmp_path)!r} cannot be written; allowed: a folder "
                                       "this process can write\n")
    assert tree(tmp_path) == before and len(store.entries()) == 3
    assert main(["store", "list", "--results", str(tmp_path)]) == 0, "reading needs no write"


def test_has_counts_only_a_manifest_of_the_right_shape(tmp_path):
    store = Store(tmp_path)
    assert not store.has("demo", {"a": 1})
    store.load_or_run("demo", {"a": 1}, counting([]))
    assert store.has("demo", {"a": 1})
    (store.path("demo", {"a": 1}) / "manifest.json").write_text('{"sha256": {}}')
    assert not store.has("demo", {"a": 1}), "a job whose result has a damaged manifest is run again"


def test_adopt_sets_a_damaged_copy_aside_and_a_read_only_group_computes_nothing(tmp_path, caplog, capsys):
    source, target = Store(tmp_path / "a"), Store(tmp_path / "b")
    source.load_or_run("demo", {"a": 1}, counting([]))
    target.load_or_run("demo", {"a": 1}, counting([], metrics={"acc": 0.1}))
    key = source.key({"a": 1})
    (tmp_path / "b" / "demo" / key / "manifest.json").write_text("[]")
    with caplog.at_level(logging.WARNING):
        assert target.adopt("demo", key, source.files("demo", key))
    assert len(caplog.records) == 1 and "replaced by a complete copy" in caplog.records[0].getMessage()
    assert target.load("demo", {"a": 1}).metrics == {"acc": 0.5}
    [aside] = (tmp_path / "b" / "demo").glob("*.corrupt-*")
    assert (aside / "manifest.json").read_text() == "[]"
    reader = ReadOnlyStore(tmp_path / "b")
    assert [s.metrics for s in reader.load_or_run_many("demo", [{"a": 1}], lambda w, t: pytest.fail("run"))] == [
        {"acc": 0.5}]
    with pytest.raises(NotStored):
        reader.load_or_run_many("demo", [{"a": 1}, {"a": 2}], lambda w, t: pytest.fail("run"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / ".badminima-store").touch()
    assert main(["store", "list", "--results", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().out == f"no results under {tmp_path / 'c'}\n"


# What the store's mutation run (scripts/mutation.py store) found no test pinning: the data identity on every path
# that loads, the files' exact bytes, a result stored by another process while this one waited, the root's checks
# where os.access passes a root user, and the housekeeping around a result.

ORIGINAL = {"dataset": "mnist", "folder": "/data/a", "sha256": "1" * 64}
OTHER = {"dataset": "mnist", "folder": "/data/b", "sha256": "2" * 64}


def test_the_data_mismatch_names_both_data_sets_and_the_result_on_every_loading_path(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]), data=ORIGINAL)
    path = store.path("demo", {"a": 1})
    expected = (f"data folder /data/b: its mnist data ({'2' * 12}) differs from the mnist data {'1' * 12} read from "
                f"/data/a, which the stored demo result {path} was computed from")
    calls = {"load": lambda s: s.load("demo", {"a": 1}, OTHER),
             "load_or_run": lambda s: s.load_or_run("demo", {"a": 1}, counting([]), OTHER),
             "load_or_run_many": lambda s: s.load_or_run_many("demo", [{"a": 1}, {"a": 2}],
                                                              lambda _, todo: [({}, {})] * len(todo), OTHER)}
    for name, call in calls.items():
        for kind in (Store, ReadOnlyStore):
            with pytest.raises(DataMismatch) as err:
                call(kind(tmp_path))
            assert str(err.value).startswith(expected), (name, kind.__name__)
    assert not store.has("demo", {"a": 2}), "nothing computed beside a mismatch"


def test_a_result_stored_without_its_data_says_so_in_the_mismatch(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    with pytest.raises(DataMismatch, match=r"differs from the data it did not record, which the stored demo"):
        store.load("demo", {"a": 1}, OTHER)


def repaired_while_waiting(store: Store, monkeypatch, data: dict | None = None) -> Path:
    """Damage the stored result of {"a": 1}, then have another process's repair land while this one waits for the
    key's lock (the lock is taken after a first, unlocked look found the result missing or damaged)."""
    good = store.path("demo", {"a": 1})
    backup = store.root / "backup"
    shutil.rmtree(backup, ignore_errors=True)
    shutil.copytree(good, backup)
    (good / "metrics.json").write_text("{}")
    real_lock = store._lock

    @contextlib.contextmanager
    def lock(path, wait=True):
        with real_lock(path, wait) as held:
            if path == good and (good / "metrics.json").read_text() == "{}":
                shutil.rmtree(good)
                shutil.copytree(backup, good)
            yield held
    monkeypatch.setattr(store, "_lock", lock)
    return good


def test_a_result_another_process_stores_while_this_one_waits_is_loaded_not_set_aside(tmp_path, monkeypatch):
    store, calls = Store(tmp_path), []
    store.load_or_run("demo", {"a": 1}, counting(calls), data=ORIGINAL)
    path = repaired_while_waiting(store, monkeypatch)
    assert store.load("demo", {"a": 1}, ORIGINAL).metrics == {"acc": 0.5}
    assert not list(path.parent.glob("*.corrupt-*")), "the repaired result was set aside"
    repaired_while_waiting(store, monkeypatch)
    assert store.load_or_run("demo", {"a": 1}, counting(calls), ORIGINAL).metrics == {"acc": 0.5}
    assert len(calls) == 1 and not list(path.parent.glob("*.corrupt-*")), "recomputed instead of loaded"
    repaired_while_waiting(store, monkeypatch)
    with pytest.raises(DataMismatch):
        store.load("demo", {"a": 1}, OTHER)
    repaired_while_waiting(store, monkeypatch)
    with pytest.raises(DataMismatch):
        store.load_or_run("demo", {"a": 1}, counting(calls), OTHER)


def test_stored_files_are_canonical_json_and_the_manifest_records_the_kernels(tmp_path):
    """The results digest hashes these bytes: every machine must write the same ones."""
    store = Store(tmp_path)
    config = {"b": [1, {"d": 2, "c": 3}], "a": None}
    store.load_or_run("demo", config, lambda _: ({"z": 1, "y": [0.5]}, {"w": torch.zeros(2)}))
    path = store.path("demo", config)
    canonical = lambda obj: json.dumps(obj, indent=1, sort_keys=True)
    assert (path / "config.json").read_text() == canonical(config)
    assert (path / "metrics.json").read_text() == canonical({"metrics": {"z": 1, "y": [0.5]}})
    manifest = json.loads((path / "manifest.json").read_text())
    assert (path / "manifest.json").read_text() == canonical(manifest)
    assert manifest["kernels"] == runtime.kernels()


def test_the_key_is_the_configurations_with_the_format_and_any_kernels_tag(tmp_path, monkeypatch):
    store = Store(tmp_path)
    assert store.key({"a": 1}) == config_key({"store_format": store_module.FORMAT, "config": {"a": 1}})
    monkeypatch.setattr(runtime, "kernels_tag", lambda: "x86_64 AVX512")
    assert store.key({"a": 1}) == config_key({"store_format": store_module.FORMAT, "config": {"a": 1},
                                              "kernels": "x86_64 AVX512"})


def test_a_run_computes_on_the_runs_thread_count_and_its_checkpoints_do_not_stay(tmp_path):
    store, seen = Store(tmp_path), []

    def run(workdir, todo=None):
        seen.append(torch.get_num_threads())
        for name in ("train.ckpt", "train.prev.ckpt", "weights.pt.tmp"):
            (workdir / name).write_bytes(b"x")
        return ({"a": 1}, {}) if todo is None else [({"a": 1}, {})] * len(todo)

    with runtime.threads(2):
        store.load_or_run("demo", {"a": 1}, run)
        store.load_or_run_many("demo", [{"a": 2}, {"a": 3}], run)
    assert seen == [runtime.RUN_THREADS] * 2
    for a in (1, 2, 3):
        assert sorted(p.name for p in store.path("demo", {"a": a}).iterdir()) == [
            "config.json", "manifest.json", "metrics.json", "weights.pt"]


def test_a_manifest_without_data_is_damaged_and_one_without_depends_is_a_result(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    store.load_or_run("demo", {"a": 2}, counting([]))
    manifest_as(lambda m: {k: v for k, v in m.items() if k != "data"})(store.path("demo", {"a": 1}))
    manifest_as(lambda m: {k: v for k, v in m.items() if k != "depends"})(store.path("demo", {"a": 2}))
    status = {e.config["a"]: (e.status, e.problem) for e in store.entries()}
    assert status == {1: ("damaged", "manifest.json has no data of the right type"), 2: ("complete", None)}
    assert store_commands.dependants(store.entries()) == {}


def test_weights_that_are_not_plain_tensors_are_damaged_even_with_their_checksum(tmp_path, caplog):
    store, calls = Store(tmp_path), []
    store.load_or_run("demo", {"a": 1}, counting(calls))
    path = store.path("demo", {"a": 1})
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1), "extra": Path("x")}, buffer)   # loads only without weights_only
    rewrite(path, "weights.pt", buffer.getvalue())
    with caplog.at_level(logging.WARNING):
        store.load_or_run("demo", {"a": 1}, counting(calls))
    assert len(calls) == 2, "set aside and recomputed"
    assert caplog.records[0].getMessage().startswith(f"badminima store: {path} is damaged (weights.pt does not parse")


def test_twenty_set_asides_of_one_result_in_a_second_keep_twenty_copies(tmp_path):
    store = Store(tmp_path)
    for _ in range(20):
        store.load_or_run("demo", {"a": 1}, counting([]))
        store._set_aside(store.path("demo", {"a": 1}), "a test")
    assert len(list(store.path("demo", {"a": 1}).parent.glob("*.corrupt-*"))) == 20


def test_an_entry_gives_its_size_and_time_and_a_config_only_where_it_is_an_object(tmp_path):
    store = Store(tmp_path)
    store.load_or_run("demo", {"a": 1}, counting([]))
    path = store.path("demo", {"a": 1})
    (entry,) = store.entries()
    assert entry.size == sum(p.stat().st_size for p in path.iterdir()) > 0
    assert entry.modified == path.stat().st_mtime
    rewrite(path, "config.json", b"[1, 2]")
    assert store.entries()[0].config is None


def test_entries_of_a_missing_root_are_none_and_one_removed_while_listed_is_left_out(tmp_path, monkeypatch):
    assert Store(tmp_path / "missing").entries() == []
    store = Store(tmp_path)
    for a in (1, 2):
        store.load_or_run("demo", {"a": a}, counting([]))
    real = store._entry
    gone = store.path("demo", {"a": 1}).name

    def racing(kind, name, path):
        if path.name == gone:
            raise FileNotFoundError(path)
        return real(kind, name, path)
    monkeypatch.setattr(store, "_entry", racing)
    assert [e.config for e in store.entries()] == [{"a": 2}]


def test_the_default_root_is_results_and_the_not_stored_messages_name_the_result(tmp_path, monkeypatch):
    monkeypatch.delenv("BADMINIMA_RESULTS", raising=False)
    assert Store().root == Path("results")
    key = Store(tmp_path).key({"a": 1})
    with pytest.raises(NotStored, match=f"^no stored demo result {key} under {tmp_path}$"):
        ReadOnlyStore(tmp_path).load_or_run("demo", {"a": 1}, counting([]))
    with pytest.raises(NotStored, match=f"^demo/{key} is not in the store at {tmp_path}$"):
        Store(tmp_path).checksums("demo", key)


def test_a_root_no_process_can_write_is_refused_even_for_a_root_user():
    """/proc takes no new folder from anyone, root included, whom os.access lets through: then the failed attempt
    gives the reason."""
    with pytest.raises(ParameterError) as err:
        Store(Path("/proc/results")).check_writable()
    message = str(err.value)
    assert message.startswith("results='/proc/results' is under '/proc', which cannot be written")
    if os.access("/proc", os.W_OK | os.X_OK):
        assert message.startswith("results='/proc/results' is under '/proc', which cannot be written (")


def test_adopting_replaces_a_damaged_copy_clears_a_stale_partial_and_an_interrupted_adoption(tmp_path, monkeypatch,
                                                                                            caplog):
    source, target = Store(tmp_path / "a"), Store(tmp_path / "b")
    source.load_or_run("demo", {"a": 1}, counting([]))
    key = source.key({"a": 1})
    files = source.files("demo", key)
    journal = tmp_path / "journal"
    monkeypatch.setenv("BADMINIMA_JOURNAL", str(journal))
    real = layout.write_durably

    def broken(path, write):
        if path.name == "weights.pt":
            raise OSError("disk full")
        real(path, write)
    monkeypatch.setattr(layout, "write_durably", broken)
    with pytest.raises(OSError):
        target.adopt("demo", key, files)
    assert [(e.key, e.status) for e in target.entries()] == [(key, "partial")], "an adoption cut short shows"
    monkeypatch.setattr(layout, "write_durably", real)
    (tmp_path / "b" / "demo" / f"{key}.partial").mkdir()
    assert target.adopt("demo", key, files)
    assert [(e.key, e.status) for e in target.entries()] == [(key, "complete")]
    assert journal.read_text() == f"trained demo {key}\n"
    (target.root / "demo" / key / "metrics.json").write_text("{}")
    with caplog.at_level(logging.WARNING):
        assert target.adopt("demo", key, files)
    assert sorted(e.status for e in target.entries()) == ["complete", "corrupt"]
    assert "is damaged (replaced by a complete copy)" in caplog.records[-1].getMessage()


@contextlib.contextmanager
def as_another_user() -> Iterator[None]:
    """Inside: os.access answers for the user nobody when this process runs as root (os.access lets root write
    anywhere; it answers for the real user, which this changes, while files are still opened as root); as this
    user when it is not root."""
    if os.getuid() != 0:
        yield
        return
    os.setreuid(65534, 0)
    try:
        yield
    finally:
        os.setreuid(0, 0)


@pytest.fixture
def shared_folder():
    """A folder outside pytest's own (which only its user may enter): open to all, for as_another_user."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o777)
    yield folder
    for path in folder.rglob("*"):
        path.chmod(0o777)
    shutil.rmtree(folder)


def test_a_journal_or_a_root_its_user_cannot_write_is_refused(shared_folder, monkeypatch):
    journal = shared_folder / "journal"
    journal.write_text("")
    journal.chmod(0o444)
    locked = shared_folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    monkeypatch.setenv("BADMINIMA_JOURNAL", str(journal))
    with as_another_user(), pytest.raises(ParameterError) as err:
        check_journal()
    assert str(err.value) == (f"BADMINIMA_JOURNAL={str(journal)!r} cannot be written; allowed: a file in an existing "
                              "folder this process can write, or unset")
    monkeypatch.delenv("BADMINIMA_JOURNAL")
    with as_another_user(), pytest.raises(ParameterError) as err:
        Store(locked / "results").check_writable()
    assert str(err.value) == (f"results={str(locked / 'results')!r} is under {str(locked)!r}, which cannot be written; "
                              "allowed: a folder this process can write")


def test_a_group_records_its_data_in_every_members_manifest(tmp_path):
    store = Store(tmp_path)
    store.load_or_run_many("demo", [{"a": 1}, {"a": 2}], lambda _, todo: [({}, {})] * len(todo), ORIGINAL)
    for a in (1, 2):
        assert json.loads((store.path("demo", {"a": a}) / "manifest.json").read_text())["data"] == ORIGINAL
        assert store.load("demo", {"a": a}, {**ORIGINAL, "folder": "/a/copy"}) is not None
