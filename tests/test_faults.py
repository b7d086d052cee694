"""Bad inputs and faults, as a new user meets them: every subcommand of the command line, chapters' parameters, the
store's verbs, the bring-your-own APIs, the environment variables the package reads, and SIGINT / SIGTERM. Each case
asserts the exit status (the exception, for an API), that the message is one line naming the option or variable and
the value, and that the store holds afterwards exactly what it held before, byte for byte, apart from what the case
legitimately added."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from badminima.book import chapters, cli
from badminima.core import jobs
from badminima.core.config import ParameterError
from badminima.core.store import Store
from badminima.paper_a import byo as paper_a_byo
from badminima.paper_b import byo as paper_b_byo

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--scale", "smoke", "--dataset", "fashion_mnist"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path -> SHA-256 (a folder -> "folder"): what the store holds."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A store holding one smoke-scale run, trained once for the module."""
    root = tmp_path_factory.mktemp("built") / "results"
    assert cli.main(["train", *SMOKE, "--results", str(root)]) == 0
    return root


@pytest.fixture
def store(built, tmp_path, monkeypatch) -> Path:
    """A copy of the built store, which every command and chapter reaches whichever way it looks for it."""
    root = tmp_path / "results"
    shutil.copytree(built, root)
    monkeypatch.setenv("BADMINIMA_RESULTS", str(root))
    monkeypatch.delenv("BADMINIMA_JOURNAL", raising=False)
    return root


@pytest.fixture
def no_chapter_runs(monkeypatch):
    """A chapter whose parameters pass the checks would be executed: here that fails the case."""
    monkeypatch.setattr(chapters, "execute", lambda *a, **k: pytest.fail("a chapter was executed"))


def one_line(text: str) -> str:
    """The message of a failed command: exactly one line on stderr."""
    assert text.endswith("\n") and text.count("\n") == 1, f"not one line: {text!r}"
    return text


def assert_refused(capsys, argv: list[str], status: int, *named: str) -> None:
    assert cli.main(argv) == status
    line = one_line(capsys.readouterr().err)
    assert line.startswith("badminima: ")
    for text in named:
        assert text in line, f"{text!r} not in {line!r}"


# (arguments after `train --scale smoke --dataset fashion_mnist --results STORE`, what the line must name)
TRAIN = [
    (["--lr", "0"], "--lr=0.0", "> 0"),
    (["--lr", "-1"], "--lr=-1.0", "> 0"),
    (["--lr", "nan"], "--lr=nan", "> 0"),
    (["--lr", "inf"], "--lr=inf", "> 0"),
    (["--lr", "abc"], "--lr", "'abc'"),
    (["--epochs", "0"], "--epochs=0", ">= 1"),
    (["--epochs", "2.5"], "--epochs", "'2.5'"),
    (["--epochs", "99999999999999999999"], "--epochs=99999999999999999999", "64-bit"),
    (["--seed", "-1"], "--seed=-1", ">= 0"),
    (["--seed", "99999999999999999999"], "--seed=99999999999999999999", "64-bit"),
    (["--seed", "9223372036854775808"], "--seed=9223372036854775808", "at most 9223372036854775807"),
    (["--seed", "x"], "--seed", "'x'"),
    (["--width", "0"], "--width=0.0", ">= 0.01"),
    (["--width", "nan"], "--width=nan", ">= 0.01"),
    (["--width", "1e30"], "--width=1e+30", "a width up to about"),
    (["--width", "1000"], "--width=1000.0", "a width up to about"),
    (["--per-class", "0"], "--per-class=0", ">= 1"),
    (["--per-class", "99999999999999999999"], "--per-class=99999999999999999999", "64-bit"),
    (["--per-class", "6001"], "--per-class=6001", "[1, 6000]"),
    (["--test-size", "0"], "--test-size=0", ">= 1"),
    (["--test-size", "10001"], "--test-size=10001", "[1, 10000]"),
    (["--model", "alexnet"], "--model='alexnet'", "resnet18"),
    (["--dataset", "imagenet"], "--dataset='imagenet'", "fashion_mnist"),
    (["--init", "xavier"], "--init", "'xavier'"),
    (["--scale", "huge"], "--scale", "'huge'"),
    (["--preset", "fancy"], "--preset", "'fancy'"),
    (["--augment", "maybe"], "--augment", "'maybe'"),
    (["--R", "3"], "--R=3", "--init adversarial"),
    (["--whole-pixels"], "--whole-pixels=True", "--init adversarial"),
    (["--init", "adversarial", "--R", "0"], "--R=0", ">= 1"),
    (["--init", "adversarial", "--N", "150"], "--N=150.0", "100"),
    (["--init", "adversarial", "--phase1-epochs", "0"], "--phase1-epochs=0", ">= 1"),
    (["--momentum", "-0.5"], "--momentum=-0.5", "allowed"),
    (["--l2", "-1e-4"], "--l2=-0.0001", "allowed"),
    (["--colour", "red"], "--colour", "red"),
    (["--results", ""], "--results=''", "folder"),
]


@pytest.mark.parametrize("options, named, allowed", TRAIN, ids=[" ".join(c[0]) for c in TRAIN])
def test_a_bad_train_option_is_one_line_and_stores_nothing(store, capsys, options, named, allowed):
    before = snapshot(store)
    argv = ["train", *SMOKE, "--results", str(store), *options]
    if options[0] == "--results":
        argv = ["train", *SMOKE, *options]
    assert_refused(capsys, argv, 2, named, allowed)
    assert snapshot(store) == before


# (chapter arguments, what the line must name); parameters are read as papermill reads them
CHAPTER = [
    (["nonsense"], "chapter='nonsense'", "paper_a_training"),
    (["paper_a_training", "-p", "lr", "0"], "lr=0", "> 0"),
    (["paper_a_training", "-p", "lr", "abc"], "lr='abc'", "a number"),
    (["paper_a_training", "-p", "seeds", "[0, 0]"], "seeds=[0, 0]", "without repeats"),
    (["paper_a_training", "-p", "seeds", "[9223372036854775808]"], "seeds=(9223372036854775808,)", "64-bit"),
    (["paper_a_training", "-p", "models", "[resnet18, resnet18]"], "models=['resnet18', 'resnet18']", "repeats"),
    (["paper_a_training", "-p", "models", "[alexnet]"], "alexnet", "resnet18"),
    (["paper_a_training", "-p", "epochs", "99999999999999999999"], "epochs=99999999999999999999", "64-bit"),
    (["paper_a_training", "-p", "width", "1e30"], "width=1e+30", "a width up to about"),
    (["paper_a_heuristics", "-p", "width", "1000"], "width=1000", "a width up to about"),
    (["paper_a_training", "-p", "colour", "red"], "colour='red'", "unknown parameter of Paper A's image chapters"),
    (["paper_a_training", "-p", "overrides", "[1]"], "overrides=[1]", "a mapping"),
    (["paper_a_training", "--scale", "tiny"], "--scale", "'tiny'"),
    (["paper_a_training", "--executor", "ray:nonsense"], "--executor='ray:nonsense'", "HOST:PORT"),
    (["paper_a_training", "--executor", "ray:localhost:0"], "--executor='ray:localhost:0'", "HOST:PORT"),
    (["paper_a_training", "--executor", "spark"], "--executor='spark'", "'local'"),
    (["paper_a_training", "-p", "executor", "ray:"], "executor={'ray': None}", "'local'"),   # YAML reads a dict
    (["paper_b_widths", "-p", "widths", "[0]"], "widths=(0,)", "positive integers"),
    (["paper_b_boundaries", "-p", "fixed_draw", "-1"], "fixed_draw=-1", ">= 0"),
    (["reproduce", "-p", "chapters_dir", "[1]"], "chapters_dir=[1]", "a str"),
    (["status", "-p", "lr", "0.1"], "lr=0.1", "not a parameter of chapter status"),
]


@pytest.mark.parametrize("arguments, named, allowed", CHAPTER, ids=[" ".join(c[0]) for c in CHAPTER])
def test_a_bad_chapter_parameter_is_one_line_and_executes_nothing(store, capsys, no_chapter_runs, arguments, named,
                                                                  allowed):
    before = snapshot(store)
    assert_refused(capsys, ["chapter", *arguments, "--root", str(REPO)], 2, named, allowed)
    assert snapshot(store) == before


@pytest.mark.parametrize("arguments, named, allowed", [
    (["--scale", "tiny"], "--scale", "'tiny'"),
    (["--executor", "ray:nonsense"], "--executor='ray:nonsense'", "HOST:PORT"),
    (["--executor", "ray:host:65536"], "--executor='ray:host:65536'", "HOST:PORT"),
    (["--publish", "yes"], "unrecognized arguments", "yes"),
])
def test_a_bad_book_option_is_one_line_and_executes_nothing(store, capsys, no_chapter_runs, arguments, named, allowed):
    before = snapshot(store)
    assert_refused(capsys, ["book", *arguments, "--root", str(REPO)], 2, named, allowed)
    assert snapshot(store) == before


def test_papermill_parameters_are_checked_before_the_kernel_starts(store, tmp_path, monkeypatch):
    monkeypatch.setattr(chapters.papermill, "execute_notebook", lambda *a, **k: pytest.fail("executed"))
    before = snapshot(store)
    for parameters, named in (({"lr": np.float32(-1)}, "lr="), ({"seeds": [0, 0]}, "seeds="),
                              ({"executor": "ray:nonsense"}, "executor='ray:nonsense'")):
        with pytest.raises(ParameterError) as err:
            chapters.execute("paper_a_training", REPO, parameters, out_dir=tmp_path / "out")
        assert str(err.value).startswith(named) and "\n" not in str(err.value)
    assert snapshot(store) == before and not (tmp_path / "out").exists()


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder that is not a store: the user's own files, which no verb may touch."""
    folder = tmp_path / "mine"
    (folder / "src" / "badminima").mkdir(parents=True)
    (folder / "src" / "badminima" / "code.py").write_text("precious = True\n")
    return folder


def test_store_verbs_refuse_a_folder_that_is_not_a_store(store, elsewhere, capsys):
    before = snapshot(elsewhere)
    for verb in (["list"], ["verify"], ["rm", "--kind", "src"]):
        assert_refused(capsys, ["store", *verb, "--results", str(elsewhere)], 2, f"--results={str(elsewhere)!r}",
                       "not a result store")
    assert snapshot(elsewhere) == before


@pytest.mark.parametrize("verb", [["list"], ["verify"], ["rm", "--kind", "src"]])
def test_store_verbs_refuse_an_empty_results_variable(store, elsewhere, capsys, monkeypatch, verb):
    monkeypatch.setenv("BADMINIMA_RESULTS", "")
    monkeypatch.chdir(elsewhere)   # where an empty path would lead
    before = snapshot(elsewhere)
    assert_refused(capsys, ["store", *verb], 2, "BADMINIMA_RESULTS=''", "folder path")
    assert snapshot(elsewhere) == before


@pytest.mark.parametrize("verb", [["list"], ["verify"]])
def test_store_verbs_refuse_a_regular_file(store, tmp_path, capsys, verb):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    assert_refused(capsys, ["store", *verb, "--results", str(file)], 2, f"--results={str(file)!r}")
    assert file.read_text() == "mine"


@pytest.mark.parametrize("verb", [["list"], ["verify"]])
def test_store_verbs_refuse_a_missing_folder(tmp_path, capsys, verb):
    missing = tmp_path / "no-such-store"
    assert_refused(capsys, ["store", *verb, "--results", str(missing)], 2, f"--results={str(missing)!r}")
    assert not missing.exists()


@pytest.mark.parametrize("arguments, status, named", [
    (["rm"], 2, "--kind or --key"),
    (["rm", "--key", ""], 2, "--kind or --key"),
    (["rm", "--kind", "nope"], 1, "--kind nope"),
    (["rm", "--key", "ffffffff"], 1, "--key ffffffff"),
    (["frobnicate"], 2, "'frobnicate'"),
    (["list", "--kind", "image"], 2, "--kind"),
])
def test_a_bad_store_verb_is_one_line_and_removes_nothing(store, capsys, arguments, status, named):
    before = snapshot(store)
    assert_refused(capsys, ["store", *arguments[:1], "--results", str(store), *arguments[1:]]
                   if arguments[0] in ("rm", "list") else ["store", *arguments], status, named)
    assert snapshot(store) == before


def test_store_rm_keeps_a_result_whose_lock_is_held(store, capsys):
    entry = Store(store).entries()[0]
    before = snapshot(store)
    lock = entry.path.with_name(entry.key + ".lock")
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert cli.main(["store", "rm", "--results", str(store), "--key", entry.key]) == 1
        line = one_line(capsys.readouterr().err)
        assert entry.key in line and "not removed" in line
    lock.unlink()
    assert snapshot(store) == before


def test_store_verify_checks_every_entry_whatever_one_holds(store, capsys):
    entry = Store(store).entries()[0]
    (entry.path / "metrics.json").write_text("{}")
    before = snapshot(store)
    assert cli.main(["store", "verify", "--results", str(store)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED image/{entry.key}: metrics.json fails its checksum" in out
    assert snapshot(store) == before


def test_store_verify_reports_a_manifest_of_the_wrong_shape_and_goes_on(store, capsys):
    entry = Store(store).entries()[0]
    (entry.path / "manifest.json").write_text('{"sha256": []}')
    before = snapshot(store)
    assert cli.main(["store", "verify", "--results", str(store)]) == 1
    captured = capsys.readouterr()
    assert f"FAILED image/{entry.key}" in captured.out and captured.err == ""
    assert snapshot(store) == before


def test_train_sets_aside_a_manifest_of_the_wrong_shape_and_recomputes(store, capsys):
    entry = Store(store).entries()[0]
    (entry.path / "manifest.json").write_text('{"sha256": []}')
    assert cli.main(["train", *SMOKE, "--results", str(store)]) == 0
    statuses = sorted(e.status for e in Store(store).entries())
    assert statuses == ["complete", "corrupt"]


def image_run(argv: list[str]):
    """The run `badminima train` builds from these options."""
    parser = cli.Parser()
    cli._train_parser(parser.add_subparsers(dest="command"))
    return cli.image_run(parser.parse_args(argv))


def test_train_resumes_past_a_truncated_checkpoint(store, capsys):
    argv = ["train", *SMOKE, "--preset", "sota", "--epochs", "3", "--results", str(store)]
    partial = Store(store).path("image-group", [image_run(argv)]).with_suffix(".partial")
    partial.mkdir(parents=True)
    (partial / "train.ckpt").write_bytes(b"PK\x03\x04 truncated")
    assert cli.main(argv) == 0
    assert not any(store.rglob("*.partial"))


# (arguments after `train --scale smoke --dataset fashion_mnist`, the environment, what the line must name)
ENVIRONMENT = [
    ({"BADMINIMA_RESULTS": ""}, ["train", *SMOKE], "BADMINIMA_RESULTS=''"),
    ({"BADMINIMA_RESULTS": ""}, ["chapter", "paper_a_training", "--root", str(REPO)], "BADMINIMA_RESULTS=''"),
    ({"BADMINIMA_RESULTS": ""}, ["book", "--root", str(REPO)], "BADMINIMA_RESULTS=''"),
    ({"BADMINIMA_FAST_KERNELS": "yes"}, ["train", *SMOKE], "BADMINIMA_FAST_KERNELS='yes'"),
    ({"BADMINIMA_FAST_KERNELS": "true"}, ["chapter", "status", "--root", str(REPO)], "BADMINIMA_FAST_KERNELS='true'"),
    ({"ATEN_CPU_CAPABILITY": "avx3"}, ["train", *SMOKE], "ATEN_CPU_CAPABILITY='avx3'"),
    ({"ATEN_CPU_CAPABILITY": "bogus"}, ["store", "list"], "ATEN_CPU_CAPABILITY='bogus'"),
]


@pytest.mark.parametrize("env, argv, named", ENVIRONMENT, ids=[f"{next(iter(e))}-{a[0]}" for e, a, _ in ENVIRONMENT])
def test_a_bad_environment_variable_is_one_line_before_any_work(store, capsys, monkeypatch, no_chapter_runs, tmp_path,
                                                                 env, argv, named):
    monkeypatch.chdir(tmp_path)   # where an empty results path would lead
    before, here = snapshot(store), snapshot(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert_refused(capsys, argv, 2, named)
    assert snapshot(store) == before and snapshot(tmp_path) == here


@pytest.mark.parametrize("journal", ["missing-folder/journal", "."])
def test_a_bad_journal_variable_is_one_line_before_any_work(store, capsys, monkeypatch, tmp_path, journal):
    monkeypatch.setenv("BADMINIMA_JOURNAL", str(tmp_path / journal))
    before = snapshot(store)
    assert_refused(capsys, ["train", *SMOKE, "--seed", "1", "--results", str(store)], 2, "BADMINIMA_JOURNAL=")
    assert snapshot(store) == before


@pytest.mark.parametrize("where", ["a file", "under /proc"])
def test_a_results_folder_that_cannot_be_written_is_one_line(tmp_path, capsys, where):
    target = tmp_path / "file" if where == "a file" else Path("/proc/badminima-results")
    if where == "a file":
        target.write_text("mine")
    assert_refused(capsys, ["train", *SMOKE, "--results", str(target)], 2, f"--results={str(target)!r}")


def test_a_diverging_run_is_stored_as_diverged(store, capsys):
    status = cli.main(["train", *SMOKE, "--lr", "1e30", "--results", str(store)])
    captured = capsys.readouterr()
    assert "diverged" in (captured.out + captured.err).lower()
    for entry in Store(store).entries():
        metrics = json.loads((entry.path / "metrics.json").read_text())["metrics"]
        assert entry.status != "complete" or metrics.get("diverged") or np.isfinite(metrics.get("train_loss", 0))
    assert status in (0, 1)


def test_epochs_the_vanilla_recipe_would_drop_are_refused_or_honoured(store, capsys):
    status = cli.main(["train", *SMOKE, "--epochs", "3", "--results", str(store)])
    captured = capsys.readouterr()
    assert (status == 2 and "--epochs=3" in one_line(captured.err)) or (status == 0 and "3 epochs" in captured.out)


def test_a_data_dir_missing_a_file_is_one_line(store, capsys, tmp_path):
    data = tmp_path / "data" / "fashion-mnist"
    data.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        shutil.copy(Path("/usr/share/datasets/fashion-mnist") / name, data / name)
    before = snapshot(store)
    assert_refused(capsys, ["train", *SMOKE, "--seed", "1", "--data-dir", str(tmp_path / "data"),
                            "--results", str(store)], 2, "t10k-labels")
    assert snapshot(store) == before


def images(n: int = 40, shape: tuple = (1, 8, 8), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), np.arange(n) % 4


def small_net(classes: int, in_channels: int) -> nn.Module:
    if in_channels != 1:
        raise ValueError(f"built for one channel, given {in_channels}")
    return nn.Sequential(nn.Flatten(), nn.Linear(64, classes))


def paper_a(store: Path, **changes):
    x, y = images()
    x_test, y_test = images(8, seed=1)
    given = dict(model_factory=small_net, x_train=x, y_train=y, x_test=x_test, y_test=y_test, seeds=[0],
                 store=Store(store)) | changes
    return paper_a_byo.experiments(given.pop("model_factory"), given.pop("x_train"), given.pop("y_train"),
                                   given.pop("x_test"), given.pop("y_test"), given.pop("seeds"), **given)


PAPER_A = [
    ({"model_factory": 3}, "model_factory=3"),
    ({"model_factory": lambda c, ch: nn.Identity()}, "model_factory="),
    ({"x_train": images()[0].astype(np.float32)}, "x_train=array of dtype float32"),
    ({"x_train": images()[0][:, 0]}, "x_train=array of shape (40, 8, 8)"),
    ({"x_test": images(8, (1, 9, 9))[0]}, "x_test=array of shape (8, 1, 9, 9)"),
    ({"y_train": np.zeros(40, dtype=int)}, "y_train="),
    ({"y_train": np.arange(39) % 4}, "y_train="),
    ({"seeds": [0, 0]}, "seeds=[0, 0]"),
    ({"seeds": [-1]}, "seeds=[-1]"),
    ({"seeds": [2**63]}, "seeds=[9223372036854775808]"),
    ({"cfg": "cpu"}, "cfg=str"),
    ({"name": ""}, "name=''"),
    pytest.param({"x_train": images(40, (8, 8, 1))[0], "x_test": images(8, (8, 8, 1))[0]}, "x_train=",
                 id="channels-last"),
]


@pytest.mark.parametrize("changes, named", PAPER_A)
def test_paper_a_byo_refuses_a_bad_argument_in_one_line(store, changes, named):
    before = snapshot(store)
    with pytest.raises(ParameterError) as err:
        paper_a(store, **changes)
    assert str(err.value).startswith(named) and "\n" not in str(err.value)
    assert snapshot(store) == before


def paper_b(**changes):
    rng = np.random.default_rng(0)
    given = dict(x_train=rng.normal(size=(20, 3)), y_train=np.arange(20) % 2, x_test=rng.normal(size=(6, 3)),
                 y_test=np.arange(6) % 2, seeds=[0]) | changes
    return paper_b_byo.problem(given.pop("x_train"), given.pop("y_train"), given.pop("x_test"), given.pop("y_test"),
                               given.pop("seeds"), **given)


PAPER_B = [
    ({"lr": 0}, "lr=0"),
    ({"lr": "0.1"}, "lr='0.1'"),
    ({"lr": np.float32(-0.01)}, "lr=-0.01"),
    ({"lr": float("nan")}, "lr=nan"),
    ({"max_steps": 0}, "max_steps=0"),
    ({"max_steps": 2**64}, "max_steps=18446744073709551616"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"seeds": [1, 1]}, "seeds="),
    ({"seeds": [2**63]}, "seeds="),
    ({"x_train": np.full((20, 3), np.nan)}, "x_train=array of shape (20, 3) holds NaN"),
    ({"x_test": np.zeros((6, 4))}, "x_test=array of shape (6, 4)"),
    ({"y_train": np.arange(19) % 2}, "y_train="),
    ({"name": " "}, "name=' '"),
]


@pytest.mark.parametrize("changes, named", PAPER_B)
def test_paper_b_byo_refuses_a_bad_argument_in_one_line(changes, named):
    with pytest.raises(ParameterError) as err:
        paper_b(**changes)
    assert str(err.value).startswith(named) and "\n" not in str(err.value)


def test_paper_b_byo_takes_numpy_numbers_as_python_numbers():
    given = paper_b(lr=np.float32(0.01), max_steps=np.int64(30), batch_size=np.int64(4), seeds=np.array([0, 1]))
    plain = paper_b(lr=0.01, max_steps=30, batch_size=4, seeds=[0, 1])
    assert given.train.max_epochs == plain.train.max_epochs and given.seeds == plain.seeds == (0, 1)
    assert float(given.train.lr) == pytest.approx(0.01, rel=1e-7)


def test_paper_b_byo_refuses_a_bad_width_before_any_work(store):
    before = snapshot(store)
    with pytest.raises(ParameterError, match=r"^widths=\[0\] is not allowed"):
        paper_b_byo.experiments(*paper_b_arrays(), widths=[0], seeds=[0], store=Store(store))
    assert snapshot(store) == before


def paper_b_arrays() -> tuple:
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 3)), np.arange(20) % 2, rng.normal(size=(6, 3)), np.arange(6) % 2


# Interrupts: the command in a process of its own, signalled once it has started the work it would resume.

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONUNBUFFERED": "1"}
ENV.pop("BADMINIMA_JOURNAL", None)


def start(argv: list[str], results: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "badminima", *argv], env={**ENV, "BADMINIMA_RESULTS": str(results)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.05)


def checkpoints(results: Path, kind: str = "*", since: float = 0.0) -> list[Path]:
    """The checkpoints of runs in progress (or kept) written after `since` (a time.time())."""
    return [p for p in results.glob(f"{kind}/*.partial/*.ckpt") if p.stat().st_mtime > since]


def workers(pid: int) -> list[int]:
    """The processes a chapter's kernel started (its pool's workers)."""
    return [p for kernel in jobs.children(pid) for p in jobs.children(kernel)]


def interrupt(command: subprocess.Popen, signum: int, results: Path) -> str:
    """Send `signum`; the command must end with its one line and the status a shell reports, leaving no process
    it started and no lock file behind."""
    started = jobs.descendants(command.pid)
    command.send_signal(signum)
    _, err = command.communicate(timeout=120)
    assert command.returncode == 128 + signum, err[-2000:]
    # After the progress bars' redrawn lines; a bar closed after the line (at exit) blanks its own line only.
    lines = [line for line in err.replace("\r", "\n").split("\n") if line.strip()]
    last = lines[-1]
    assert last.startswith("badminima: interrupted: ") and last.endswith("rerun the same command to continue"), \
        err[-2000:]
    assert [line for line in lines if line.startswith("badminima:")] == [last] and "Traceback" not in err, err[-2000:]
    assert jobs.alive(started) == [], "a process the command started outlived it"
    assert list(results.rglob("*.lock")) == [], "a lock file outlived the command"
    return last


# Long enough (about 4 s at smoke scale) that the signal, passed on by --fast-kernels' process, lands mid-run: at 8
# epochs the run could finish first and the signal arrive as the command exits.
SLOW_TRAIN = ["train", *SMOKE, "--preset", "sota", "--epochs", "100"]


# SIGTERM goes to `--fast-kernels`, whose command runs in a process of its own that the signal is passed on to.
@pytest.mark.parametrize("signum, argv", [(signal.SIGINT, SLOW_TRAIN), (signal.SIGTERM, ["--fast-kernels", *SLOW_TRAIN])],
                         ids=["SIGINT", "SIGTERM --fast-kernels"])
def test_an_interrupted_train_keeps_its_checkpoints_and_its_rerun_resumes(tmp_path, signum, argv):
    results = tmp_path / "results"
    command = start(argv, results)
    wait_for(lambda: checkpoints(results), 60, "checkpoint")
    kept_before = [p.name for p in results.glob("*/*.partial/*")]
    line = interrupt(command, signum, results)
    assert line == ("badminima: interrupted: 0 result(s) stored, 1 run(s) kept to resume; rerun the same command to "
                    "continue"), f"{line!r}; checkpoints when signalled: {kept_before}"
    kept = snapshot(next(results.glob("*/*.partial")))
    assert any(name.endswith(".ckpt") for name in kept)
    rerun = start(argv, results)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "100 epochs" in out
    assert [e.status for e in Store(results).entries()] == ["complete"] and not list(results.rglob("*.lock"))


@pytest.fixture(scope="module")
def book_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    return root


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a chapter trains over a pool only with 2 or more cores")
def test_an_interrupted_chapter_ends_its_kernel_and_workers_and_its_reruns_resume(tmp_path, book_root):
    """Interrupted with SIGINT, rerun and interrupted with SIGTERM, then rerun to the end: one chapter execution
    serves both signals, since a chapter's kernel takes most of a minute to get to its pool."""
    results = tmp_path / "results"
    # A run that ends a second after its first checkpoint can be stored before the signal reaches the workers, and
    # nothing is then kept: vanilla runs fitting early (1 round in 6 here), or stopping at smoke's vanilla cap of 2
    # epochs (a CI failure). At a step of 1e-6 no run fits, and with both recipes capped at 40 epochs (about 8 s)
    # every phase-2 run is mid-run when signalled.
    argv = ["chapter", "paper_a_training", "--scale", "smoke", "-p", "epochs", "40", "-p", "vanilla_cap", "40",
            "-p", "lr", "1e-6", "--root", str(book_root)]
    for signum in (signal.SIGINT, signal.SIGTERM):
        began = time.time()
        command = start(argv, results)
        # A checkpoint of phase 2 (an early one of its forty epochs), this execution's own: signalled mid-run, not as a
        # run is being stored.
        wait_for(lambda: workers(command.pid) and checkpoints(results, "image-group", began), 180,
                 "pool worker training")
        interrupt(command, signum, results)
        assert any(e.status == "partial" for e in Store(results).entries()), "the runs kept to resume"
    rerun = start(argv, results)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    left = [(e.kind, e.key, e.status, sorted(p.name for p in e.path.iterdir())) for e in Store(results).entries()
            if e.status != "complete"]
    assert left == [] and not list(results.rglob("*.lock"))
    assert not (book_root / "book" / "chapters" / "paper_a_training.running.ipynb").exists()
