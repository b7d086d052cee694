"""The command line over the library: `python -m badminima --help`. Every option is checked before any work starts;
a bad one ends the command with one line on stderr (the option as typed, its value, what is allowed) and exit
status 2."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn
from unittest import mock

import yaml

from badminima.book import chapters, store_commands
from badminima.core import jobs, runtime
from badminima.core.config import ParameterError, check_choice, check_range
from badminima.core.data.images import MalformedDataError
from badminima.core.store import Store, default_root
from badminima.paper_a import protocol as paper_a

# Where a configuration's field is the value of a `train` option, its errors name the option.
TRAIN_OPTIONS = {"scale": "--scale", "dataset": "--dataset", "per_class": "--per-class", "test_size": "--test-size",
                 "width": "--width", "seed": "--seed", "R": "--R", "N": "--N", "phase1_epochs": "--phase1-epochs",
                 "epochs": "--epochs", "lr": "--lr", "l2": "--l2", "momentum": "--momentum"}
ADVERSARIAL_ONLY = {"R": "--R", "N": "--N", "whole_pixels": "--whole-pixels", "phase1_epochs": "--phase1-epochs"}


class Parser(argparse.ArgumentParser):
    """argparse that reads negative numbers as values (`--l2 -1e-4`) and ends its own errors in one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes an argument for an option unless it matches this; its own pattern misses "-1e-4".
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"badminima: {message}\n")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: an integer such as 3") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: a number such as 0.1 or 1e-4") from None


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one image run (Paper A) into the result store",
                       description="Train one run of Paper A's image experiments into the result store, by "
                                   "default exactly as the paper-scale chapters do (so the book reuses it); a stored "
                                   "run is loaded, not retrained, and a killed run resumes. Options override the "
                                   "scale's protocol.")
    p.add_argument("--scale", default="paper", choices=tuple(paper_a.SCALES),
                   help="the chapters' protocol to follow (default: paper)")
    p.add_argument("--dataset", help="fashion_mnist, mnist, cifar10, cifar100, cinic10, restricted_imagenet "
                                     "(default: the scale's; cifar10 at paper scale)")
    p.add_argument("--data-dir", help="folder holding the data sets (default: $BADMINIMA_DATA or ./data)")
    p.add_argument("--results", help="result store folder (default: $BADMINIMA_RESULTS or ./results)")
    p.add_argument("--per-class", type=_integer, help="training images per class (default: the scale's)")
    p.add_argument("--test-size", type=_integer, help="evaluate on the first N test images (default: the scale's)")
    p.add_argument("--model", default="resnet18", help="vgg16, resnet18 (default), resnet50, densenet40")
    p.add_argument("--width", type=_number, help="channel width multiplier (default: the scale's)")
    p.add_argument("--seed", type=_integer, default=0, help="fixes init, Algorithm 1's set C, batch order (default 0)")
    p.add_argument("--init", choices=("random", "adversarial"), default="random")
    p.add_argument("--R", type=_integer, help="Algorithm 1's replication factor (default: the scale's)")
    p.add_argument("--N", type=_number, help="Algorithm 1: %% of values zeroed per copy (default: the scale's)")
    p.add_argument("--whole-pixels", action="store_true", help="Algorithm 1 zeroes whole pixels, not values")
    p.add_argument("--phase1-epochs", type=_integer,
                   help="cap on Algorithm 1's training (default: the scale's; it stops at 99.99%%)")
    p.add_argument("--preset", choices=("vanilla", "sota"), default="vanilla",
                   help="vanilla: plain SGD; sota: crop+flip, l2, momentum (switches below override)")
    p.add_argument("--augment", choices=("on", "off"), help="random crop (padding 4) and horizontal flip")
    p.add_argument("--l2", type=_number, help="weight decay (default: the preset's)")
    p.add_argument("--momentum", type=_number, help="SGD momentum (default: the preset's)")
    p.add_argument("--lr", type=_number, help="initial learning rate (default: the scale's)")
    p.add_argument("--epochs", type=_integer,
                   help="epochs (default: the scale's); the paper's lr drops scale with them")
    p.add_argument("--until-fit", action="store_true", help="stop at 100%% training accuracy")
    p.add_argument("--compile", action="store_true", help="on CUDA, torch.compile the network")


def _chapter_parsers(sub: argparse._SubParsersAction) -> None:
    for name, text in (("book", "execute every chapter at a scale, then build the HTML book"),
                       ("chapter", "execute chapters with papermill into book/chapters/ (no book build)")):
        p = sub.add_parser(name, help=text, description=text)
        if name == "chapter":
            p.add_argument("names", nargs="*", help=f"chapters (default: all): {', '.join(chapters.CHAPTERS)}")
            p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                           help="a chapter parameter, as papermill takes it (VALUE is read as YAML: 0.05, "
                                "'[0, 1]', resnet18); `-p scale S` is --scale S")
        # A named chapter refuses, in a line of its own, a scale it has no protocol for; `book` executes every chapter.
        p.add_argument("--scale", default="cpu", choices=chapters.SCALES if name == "chapter" else chapters.BOOK_SCALES)
        p.add_argument("--executor", help="where the chapters' runs train: local (default), ray (a Ray cluster "
                                          "started on this machine), ray:ADDRESS or ray:auto (a running cluster)")
        p.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: here)")
        if name == "book":
            p.add_argument("--publish", action="store_true",
                           help="record this build's results digest as the published one (book/published.json, to "
                                "commit), which every rebuild compares its own with")


def parse_value(text: str) -> Any:
    """A -p value: YAML, as papermill's -y reads it, except that numbers YAML 1.1 leaves as text (1e-4) are
    numbers and None is None, as papermill's -p reads them."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return _numbers(value)


def _numbers(value: Any) -> Any:
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if not isinstance(value, str):
        return value
    if value == "None":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def image_run(args: argparse.Namespace):
    """The run the `train` options ask for, built by Paper A's protocol; errors name the options."""
    from badminima.core import convnets

    given = {field: getattr(args, field) for field in ADVERSARIAL_ONLY if getattr(args, field) not in (None, False)}
    if args.init == "random" and given:
        field, value = next(iter(given.items()))
        raise ParameterError(f"{ADVERSARIAL_ONLY[field]}={value!r} applies only to an adversarial run; allowed: "
                             f"--init adversarial, or leave {ADVERSARIAL_ONLY[field]} out")
    check_choice("--model", args.model, convnets.NAMES)
    check_range("--seed", args.seed, 0, integer=True)
    try:
        cfg = paper_a.config_for(args.scale, dataset=args.dataset, models=(args.model,), width=args.width,
                                  per_class=args.per_class, test_size=args.test_size, R=args.R, N=args.N,
                                  whole_pixels=args.whole_pixels or None, epochs=args.epochs,
                                  phase1_epochs=args.phase1_epochs, lr=args.lr, l2=args.l2, momentum=args.momentum)
        augment = None if args.augment is None else args.augment == "on"
        return paper_a.image_run(cfg, args.model, args.seed, args.init, args.preset, augment=augment, l2=args.l2,
                                  momentum=args.momentum, until_fit=args.until_fit, epochs=args.epochs)
    except ParameterError as err:
        raise err.renamed(TRAIN_OPTIONS[err.name]) if err.name in TRAIN_OPTIONS else err


def _train(args: argparse.Namespace) -> int:
    from badminima.core.data import images
    from badminima.paper_a.experiments import diverged
    from badminima.paper_a.runs import run_image

    run = image_run(args)
    if args.width is not None:
        chapters.check_fits("--width", run.model, args.width)
    try:
        store = Store(args.results)
    except ParameterError as err:   # an empty --results, or an empty $BADMINIMA_RESULTS (named as it is)
        raise err.renamed("--results") if args.results is not None else err
    store.check_writable("--results")   # a file, an unwritable folder or a bad $BADMINIMA_JOURNAL: before any work
    if run.data.per_class is not None or run.data.test_size is not None:
        try:
            run.data.check_sizes(images.load(run.data.dataset, args.data_dir))
        except ParameterError as err:
            raise err.renamed(TRAIN_OPTIONS[err.name])
    data_dir = {"BADMINIMA_DATA": str(args.data_dir)} if args.data_dir else {}
    with mock.patch.dict(os.environ, data_dir):
        stored = run_image(run, store, compile_=args.compile)
    m = stored.metrics
    print(f"{args.init} init, {args.preset}: train acc {100 * m['train_acc']:.2f}%, "
          f"test acc {100 * m['test_acc']:.2f}%, {m['epochs']} epochs"
          + (" (diverged: the loss became non-finite; stored as diverged, not fitted)" if diverged(m) else ""))
    return 0


def _chapter(args: argparse.Namespace) -> int:
    parameters = {name: parse_value(value) for name, value in args.parameter}
    chapters.execute_all(args.root, args.scale, args.names or None, parameters=parameters,
                         executor=_executor(args))
    return 0


def _executor(args: argparse.Namespace) -> str | None:
    if args.executor is not None:
        try:
            jobs.check_executor(args.executor)
        except ParameterError as err:
            raise err.renamed("--executor") from None
    return args.executor


def _book(args: argparse.Namespace) -> int:
    from badminima.book import summary

    chapters.execute_all(args.root, args.scale, executor=_executor(args))
    index = chapters.build(args.root)
    executed = Path(args.root) / summary.CHAPTERS_DIR
    results = os.environ.get("BADMINIMA_RESULTS", str(Path(args.root) / "results"))   # where the chapters stored
    if args.publish:
        summary.publish(executed, results)
    print(summary.digest_line(executed, results).replace("`", ""))
    verdicts = summary.saved_verdicts(executed)
    print(f"book built: {index}\n{summary.count_line(verdicts)}")
    return 0


def _with_fast_kernels(argv: list[str]) -> int:
    """The same command in a new process that computes with the host's kernels: this one pinned them when
    badminima was imported, and a library picks its kernels once. A signal is passed on to it, and it says what
    it kept."""
    env = {k: v for k, v in os.environ.items() if k not in runtime.KERNELS} | {runtime.FAST_KERNELS: "1"}
    child = subprocess.Popen([sys.executable, "-m", "badminima", *argv], env=env)
    with jobs.interruptible():
        try:
            child.wait()
        except jobs.Interrupted as stop:
            child.send_signal(stop.signum)
            child.wait()
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


# The values ATen takes for its kernels (it silently falls back to "default" on any other, so a typo would compute
# with other kernels than the user asked for).
ATEN_CAPABILITIES = ("default", "avx2", "avx512", "sve256", "vsx", "zvector")


def check_environment(command: str) -> None:
    """ParameterError, naming the variable, for a bad value of one that `command` reads, before any work."""
    fast = os.environ.get(runtime.FAST_KERNELS)
    if fast not in (None, "", "0", "1"):
        raise ParameterError(f"{runtime.FAST_KERNELS}={fast!r} is not allowed; allowed: 1 (the host's fastest "
                             "kernels), 0 or unset (the pinned ones)")
    aten = os.environ.get("ATEN_CPU_CAPABILITY")
    if aten is not None and aten.lower() not in ATEN_CAPABILITIES:
        raise ParameterError(f"ATEN_CPU_CAPABILITY={aten!r} is not allowed; allowed: one of "
                             f"{', '.join(ATEN_CAPABILITIES)}, or unset (badminima pins avx2)")
    if command in ("chapter", "book") and "BADMINIMA_RESULTS" in os.environ:   # the kernels' store
        default_root()   # an empty one is refused: it would be the current folder


def _store_of(args: argparse.Namespace) -> Store | None:
    """The store a command writes to; None where its path is refused (empty)."""
    if args.command in ("chapter", "book"):   # where chapters.execute sends the kernels
        root = os.environ.get("BADMINIMA_RESULTS", str(Path(args.root) / "results"))
    else:
        root = args.results
    try:
        return Store(root)
    except ParameterError:
        return None


def _complete(store: Store | None) -> set[tuple[str, str]]:
    return {(e.kind, e.key) for e in _entries(store) if e.status == "complete"}


def _entries(store: Store | None) -> list:
    """A store's entries; none where the folder is not a store (a mistyped --results is not read through)."""
    if store is None:
        return []
    try:
        store.check_is_store()
    except ParameterError:
        return []
    return store.entries()


def _interrupted(store: Store | None, before: set[tuple[str, str]]) -> str:
    """The one line an interrupted command ends with: what it stored and what a rerun resumes."""
    entries = _entries(store)
    stored = len({(e.kind, e.key) for e in entries if e.status == "complete"} - before)
    kept = sum(e.status == "partial" for e in entries)
    return (f"interrupted: {stored} result(s) stored, {kept} run(s) kept to resume; rerun the same command to "
            "continue")


COMMANDS = {"train": _train, "chapter": _chapter, "book": _book, "store": store_commands.run}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="badminima", description=__doc__)
    parser.add_argument("--fast-kernels", action="store_true",
                        help="compute with this CPU's own fastest kernels instead of the pinned AVX2 ones "
                             "(scripts/bench_kernels.py measures the gain); results then differ in their last bits "
                             "from other machines' and are stored under keys of their own")
    sub = parser.add_subparsers(dest="command", required=True)
    _chapter_parsers(sub)
    _train_parser(sub)
    store_commands.add_parser(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:   # --help, or argparse's own one-line error
        return exit_.code
    if args.fast_kernels and os.environ.get(runtime.FAST_KERNELS) != "1":
        return _with_fast_kernels(sys.argv[1:] if argv is None else argv)
    store = _store_of(args)
    before = _complete(store)
    try:
        with jobs.interruptible():
            check_environment(args.command)
            return COMMANDS[args.command](args)
    except (ParameterError, FileNotFoundError, MalformedDataError) as err:
        print(f"badminima: {err}", file=sys.stderr)
        return 2
    except jobs.Interrupted as stop:
        print(f"badminima: {_interrupted(store, before)}", file=sys.stderr)
        return stop.status
