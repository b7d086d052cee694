"""The command line: its runs are the chapters' runs, and every bad option or chapter parameter ends in one line on
stderr, exit status 2, before anything is trained, executed or stored."""
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from badminima.book import chapters, cli
from badminima.core.config import ParameterError
from badminima.core.store import Store
from badminima.paper_a import experiments, protocol
from badminima.paper_a import runs as image_runs
from badminima.paper_a.runs import phase1_key
from badminima.paper_a.protocol import PaperAConfig
from badminima.paper_a.sketch import SketchConfig

REPO = Path(__file__).resolve().parents[1]
MODELS = "'vgg16', 'resnet18', 'resnet50', 'densenet40'"
DATASETS = "'fashion_mnist', 'mnist', 'cifar10', 'cifar100', 'cinic10', 'restricted_imagenet'"
EXECUTORS = ("choose 'local', 'ray' (a cluster started on this machine), or 'ray:ADDRESS' with ADDRESS auto (the "
             "running cluster), HOST:PORT or ray://HOST:PORT")
# Any field of a chapter's configuration is a `-p` of the command line (it goes into the chapter's `overrides`).
PAPER_A_FIELDS = ", ".join(f.name for f in dataclasses.fields(PaperAConfig))
SKETCH_FIELDS = ", ".join(f.name for f in dataclasses.fields(SketchConfig))


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A store holding one result, a tiny Fashion-MNIST (2 training images a class, 10 test images) and a book
    root with the chapters' sources; results go to the store whichever way a command looks for them."""
    store = tmp_path / "results"
    entry = store / "image" / "0123456789abcdef"
    entry.mkdir(parents=True)
    (entry / "metrics.json").write_text('{"test_acc": 0.5}')
    data = tmp_path / "data" / "fashion-mnist"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        write_idx(data / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(data / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    root = tmp_path / "root"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    monkeypatch.setenv("BADMINIMA_RESULTS", str(store))
    monkeypatch.setattr(image_runs, "run_image", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(chapters, "execute", lambda *a, **k: pytest.fail("executed a chapter"))
    return {"store": store, "data": tmp_path / "data", "root": root}


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


TRAIN_CASES = [
    (["--init", "random", "--R", "3"],
     "--R=3 applies only to an adversarial run; allowed: --init adversarial, or leave --R out"),
    (["--N", "20"], "--N=20.0 applies only to an adversarial run; allowed: --init adversarial, or leave --N out"),
    (["--whole-pixels"], "--whole-pixels=True applies only to an adversarial run; allowed: --init adversarial, or "
                         "leave --whole-pixels out"),
    (["--phase1-epochs", "5"], "--phase1-epochs=5 applies only to an adversarial run; allowed: --init adversarial, "
                               "or leave --phase1-epochs out"),
    (["--lr", "0"], "--lr=0.0 is out of range; allowed: a number > 0"),
    (["--lr", "nan"], "--lr=nan is out of range; allowed: a number > 0"),
    (["--init", "adversarial", "--N", "100"], "--N=100.0 is out of range; allowed: a number in [0, 100)"),
    (["--l2", "-1e-4"], "--l2=-0.0001 is out of range; allowed: a number >= 0"),
    (["--momentum", "1.5"], "--momentum=1.5 is out of range; allowed: a number in [0, 0.999]"),
    (["--epochs", "0"], "--epochs=0 is out of range; allowed: an integer >= 1"),
    (["--seed", "-1"], "--seed=-1 is out of range; allowed: an integer >= 0"),
    (["--width", "0"], "--width=0.0 is out of range; allowed: a number >= 0.01"),
    (["--per-class", "0"], "--per-class=0 is out of range; allowed: an integer >= 1"),
    (["--init", "adversarial", "--R", "0"], "--R=0 is out of range; allowed: an integer >= 1"),
    (["--init", "adversarial", "--phase1-epochs", "-3"],
     "--phase1-epochs=-3 is out of range; allowed: an integer >= 1"),
    (["--model", "alexnet"], f"--model='alexnet' is not allowed; choose one of {MODELS}"),
    (["--dataset", "imagenet"], f"--dataset='imagenet' is not allowed; choose one of {DATASETS}"),
    (["--dataset", "fashion_mnist", "--test-size", "11"],
     "--test-size=11 is more than the test set's 10 images; allowed: an integer in [1, 10]"),
    (["--dataset", "fashion_mnist", "--per-class", "3"],
     "--per-class=3 is more than class 0's 2 training images; allowed: an integer in [1, 2]"),
    (["--lr", "abc"], "argument --lr: 'abc' is not a number; allowed: a number such as 0.1 or 1e-4"),
    (["--epochs", "2.5"], "argument --epochs: '2.5' is not an integer; allowed: an integer such as 3"),
    (["--init", "xavier"], "argument --init: invalid choice: 'xavier' (choose from 'random', 'adversarial')"),
    (["--scale", "huge"], "argument --scale: invalid choice: 'huge' (choose from 'smoke', 'cpu', 'gpu', 'paper')"),
    (["--colour", "red"], "unrecognized arguments: --colour red"),
]

CHAPTER_CASES = [
    (["paper_a_sketch", "nonsense"], "chapter='nonsense' is not allowed; choose one of "
     + ", ".join(map(repr, chapters.CHAPTERS))),
    (["paper_a_training", "-p", "lr", "0"], "lr=0 is out of range; allowed: a number > 0"),
    (["paper_a_training", "paper_a_sketch", "-p", "R", "2"],
     f"R=2 is an unknown parameter of the sketch; allowed: {SKETCH_FIELDS}"),
    (["paper_a_training", "-p", "colour", "red"],
     f"colour='red' is an unknown parameter of Paper A's image chapters; allowed: {PAPER_A_FIELDS}"),
    (["paper_a_training", "-p", "overrides", "[lr]"], "overrides=['lr'] must be a mapping of the configuration's "
     "fields to values, such as {'seeds': [0, 1]} (the scale is a parameter of its own)"),
    (["paper_b_live", "-p", "datasets", "[vmnist]"],
     "dataset='vmnist' is not allowed; choose one of 'gaussians', 'circles', 'spirals'"),
    (["paper_b_boundaries", "-p", "datasets", "[circles]"], "datasets=['circles'] is fixed by this chapter (Figure "
     "2's data sets, Figure 6's); allowed: leave it out"),
    (["paper_a_training", "-p", "seeds", "[0, 0]"],
     "seeds=[0, 0] lists 0 more than once; allowed: a list without repeats"),
    (["paper_a_training", "-p", "models", "[resnet18, resnet18]"],
     "models=['resnet18', 'resnet18'] lists 'resnet18' more than once; allowed: a list without repeats"),
    (["paper_b_widths", "-p", "widths", "[10, 20, 10]"],
     "widths=[10, 20, 10] lists 10 more than once; allowed: a list without repeats"),
    (["paper_a_replication", "-p", "models", "resnet18"],
     f"models='resnet18' must be a non-empty list of models; choose from {MODELS}"),
    (["paper_a_heuristics", "-p", "N", "100"], "N=100 is out of range; allowed: a number in [0, 100)"),
    # Paper A's chapters also run at the gpu scale (Paper B's have none).
    (["paper_a_complexity", "-p", "scale", "huge"], "scale='huge' is not allowed; choose one of 'smoke', 'cpu', "
                                                    "'gpu', 'paper' (chapter paper_a_complexity)"),
    (["paper_a_training", "paper_b_widths", "--scale", "gpu"],
     "scale='gpu' is not allowed; choose one of 'smoke', 'cpu', 'paper' (chapter paper_b_widths)"),
    (["paper_a_sketch", "-p", "lr", "1e-4", "-p", "max_epochs", "0"],
     "max_epochs=0 is out of range; allowed: an integer >= 1"),
    (["paper_b_widths", "-p", "widths", "[0, 4]"], "widths=(0, 4) must be a non-empty list of positive integers"),
    (["paper_b_budget", "-p", "datasets", "['vmnist']"],
     "dataset='vmnist' is not allowed; choose one of 'gaussians', 'circles', 'spirals', 'spirals_2pi'"),
    (["paper_b_budget", "-p", "budgets", "[1000, 1000000]"],
     "budgets=[1000, 1000000] must be a non-empty list of step counts in [1, max_steps = 1000000)"),
    (["paper_b_boundaries", "-p", "fixed_draw", "-1"], "fixed_draw=-1 is out of range; allowed: an integer >= 0"),
    (["reproduce", "-p", "lr", "0.1"], "lr=0.1 is not a parameter of chapter reproduce; allowed: chapters_dir"),
    (["reproduce", "-p", "chapters_dir", "[1]"],
     "chapters_dir=[1] is not a str; allowed: a str such as 'book/chapters'"),
    (["paper_a_sketch", "-p", "lr"], "argument -p/--parameter: expected 2 arguments"),
    (["paper_b_widths", "--executor", "spark"], f"--executor='spark' is not allowed; {EXECUTORS}"),
    (["paper_b_widths", "-p", "executor", "dask"], f"executor='dask' is not allowed; {EXECUTORS}"),
    (["paper_b_widths", "--executor", "ray:nonsense"], f"--executor='ray:nonsense' is not allowed; {EXECUTORS}"),
    (["paper_b_widths", "--executor", "ray:host:99999"], f"--executor='ray:host:99999' is not allowed; {EXECUTORS}"),
    (["paper_a_training", "-p", "seeds", "[0, 9223372036854775808]"],
     "seeds=(0, 9223372036854775808) holds a seed too large for this machine's 64-bit integers; allowed: seeds in "
     "[0, 9223372036854775807]"),
]


@pytest.mark.parametrize("options, line", TRAIN_CASES, ids=[" ".join(c[0]) for c in TRAIN_CASES])
def test_a_bad_train_option_is_one_line_and_stores_nothing(places, capsys, options, line):
    before = tree(places["store"])
    argv = ["train", "--results", str(places["store"]), "--data-dir", str(places["data"]), *options]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"badminima: {line}\n"
    assert tree(places["store"]) == before


@pytest.mark.parametrize("arguments, line", CHAPTER_CASES, ids=[" ".join(c[0]) for c in CHAPTER_CASES])
def test_a_bad_chapter_parameter_is_one_line_and_executes_nothing(places, capsys, arguments, line):
    before, book = tree(places["store"]), tree(places["root"])
    assert cli.main(["chapter", *arguments, "--root", str(places["root"])]) == 2
    assert capsys.readouterr().err == f"badminima: {line}\n"
    assert tree(places["store"]) == before and tree(places["root"]) == book


@pytest.mark.parametrize("scale", ["tiny", "gpu"])
def test_the_book_rejects_a_scale_some_chapter_lacks_in_one_line(capsys, scale):
    assert cli.main(["book", "--scale", scale]) == 2
    assert capsys.readouterr().err == (f"badminima: argument --scale: invalid choice: '{scale}' (choose from "
                                       "'smoke', 'cpu', 'paper')\n")


def test_each_chapter_builds_its_configuration_at_the_scales_it_offers_and_refuses_the_others():
    for chapter in chapters.CHAPTERS.values():
        for scale in chapters.SCALES:
            if scale in chapter.scales:
                chapter.config(scale)
            elif chapter.config is not None:
                with pytest.raises(ParameterError, match=f"^scale='{scale}' is not allowed"):
                    chapter.config(scale)


def test_the_gpu_scale_reaches_a_chapter_that_takes_it(places, monkeypatch):
    calls = executions(places, monkeypatch)
    assert cli.main(["chapter", "paper_a_training", "--scale", "gpu", "--root", str(places["root"])]) == 0
    assert calls == [("paper_a_training", {"scale": "gpu"})]


def test_the_installed_command_exits_2_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "badminima", "train", "--lr", "0", "--results", str(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, "BADMINIMA_DATA": str(tmp_path)})
    assert (out.returncode, out.stderr) == (2, "badminima: --lr=0.0 is out of range; allowed: a number > 0\n")
    assert not any(tmp_path.iterdir())


def test_chapter_parameters_are_read_as_papermill_reads_them():
    assert cli.parse_value("[0, 1]") == [0, 1]
    assert cli.parse_value("1e-4") == 1e-4 and cli.parse_value("-0.05") == -0.05
    assert cli.parse_value("[1e-4, 0.1]") == [1e-4, 0.1]
    assert cli.parse_value("None") is None and cli.parse_value("true") is True
    assert cli.parse_value("resnet18") == "resnet18" and cli.parse_value("[0, 1") == "[0, 1"


def executions(places, monkeypatch) -> list[tuple[str, dict]]:
    """The chapters and parameters `chapters.execute` is called with, from now on; it executes nothing."""
    calls = []

    def execute(name, root, parameters, **kwargs):   # an executed notebook with its record, as chapters.execute leaves it
        calls.append((name, parameters))
        notebook = places["root"] / f"{name}.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.metadata["badminima"] = {"runs": {"trained": 0, "loaded": 0}}
        nbformat.write(nb, notebook)
        return notebook

    monkeypatch.setattr(chapters, "execute", execute)
    return calls


def test_good_chapters_execute_with_their_parameters_only_after_all_are_checked(places, monkeypatch):
    calls = executions(places, monkeypatch)
    argv = ["chapter", "paper_a_training", "paper_a_heuristics", "-p", "seeds", "[0, 1]", "-p", "lr", "-1e-2",
            "--root", str(places["root"])]
    assert cli.main(argv) == 2 and calls == []
    argv[8] = "1e-2"
    assert cli.main(argv) == 0
    parameters = {"scale": "cpu", "overrides": {"seeds": [0, 1], "lr": 0.01}}
    assert calls == [("paper_a_training", parameters), ("paper_a_heuristics", parameters)]
    calls.clear()
    # --executor goes to the chapters that train, not to the pages that only gather
    assert cli.main(["chapter", "paper_b_budget", "status", "--executor", "ray:auto", "--root", str(places["root"])]) == 0
    assert calls == [("paper_b_budget", {"scale": "cpu", "executor": "ray:auto"}), ("status", {})]


def cli_run(monkeypatch, *options: str):
    """The run `badminima train` hands to training, and the store it would write to."""
    seen = {}

    def run_image(run, store, **kwargs):
        seen["run"], seen["store"] = run, store
        return type("Stored", (), {"metrics": {"train_acc": 1.0, "test_acc": 0.5, "epochs": 1}})()

    monkeypatch.setattr(image_runs, "run_image", run_image)
    assert cli.main(["train", *options]) == 0
    return seen["run"], seen["store"]


def grid_run(cfg, model: str, seed: int, init: str, mode: str):
    (run,) = [run for labels, run in experiments.main_grid(cfg)
              if labels == {"model": model, "seed": seed, "init": init, "mode": mode}]
    return run


@pytest.mark.parametrize("dataset", ["cifar10", "cinic10"])
@pytest.mark.parametrize("init", ["random", "adversarial"])
@pytest.mark.parametrize("preset, mode", [("vanilla", "vanilla"), ("sota", "SOTA")])
def test_the_command_lines_run_is_the_paper_scale_chapters_run(tmp_path, monkeypatch, dataset, init, preset, mode):
    run, store = cli_run(monkeypatch, "--dataset", dataset, "--model", "resnet18", "--init", init, "--preset",
                         preset, "--seed", "0", "--results", str(tmp_path))
    chapter = grid_run(protocol.config_for("paper", dataset=dataset), "resnet18", 0, init, mode)
    assert store.path("image", run) == Store(tmp_path).path("image", chapter)
    assert Store(tmp_path).path("adversarial", phase1_key(run)) == Store(tmp_path).path("adversarial",
                                                                                        phase1_key(chapter))
    epochs, l2 = (300, 1e-4) if dataset == "cinic10" else (350, 5e-4)
    assert run.train.max_epochs == epochs and run.train.weight_decay == (l2 if mode == "SOTA" else 0.0)
    assert (run.adversarial is None) == (init == "random")
    if init == "adversarial":
        assert (run.adversarial.replication, run.adversarial.train.max_epochs) == (10, epochs)


def test_options_override_the_protocol(tmp_path, monkeypatch):
    run, _ = cli_run(monkeypatch, "--dataset", "cifar10", "--l2", "1e-3", "--augment", "on", "--epochs", "35",
                     "--init", "adversarial", "--whole-pixels", "--R", "2", "--until-fit", "--results", str(tmp_path))
    assert (run.train.weight_decay, run.train.momentum, run.augment, run.train.until_fit) == (1e-3, 0.0, True, True)
    assert run.train.lr_drops == (15, 25), "the paper's drops after 150 and 250 of 350 epochs, scaled to 35"
    assert (run.adversarial.replication, run.adversarial.whole_pixels) == (2, True)
    cpu, _ = cli_run(monkeypatch, "--scale", "cpu", "--results", str(tmp_path))
    assert cpu == grid_run(protocol.config_for("cpu"), "resnet18", 0, "random", "vanilla")


@pytest.mark.parametrize("scale", list(protocol.SCALES))
def test_train_takes_every_scale_paper_as_chapters_do(tmp_path, monkeypatch, scale):
    run, _ = cli_run(monkeypatch, "--scale", scale, "--dataset", "fashion_mnist", "--results", str(tmp_path))
    assert run == grid_run(protocol.config_for(scale, dataset="fashion_mnist"), "resnet18", 0, "random", "vanilla")
