"""Mutation testing of the core modules whose guarantees the book rests on: would the tests catch the code being
wrong? Runs mutmut (pinned in requirements.txt; settings shared by every module in pyproject.toml [tool.mutmut])
over one module at a time, each with only the tests that cover it so a module takes minutes, and prints each
module's score (killed / total) and the mutants that survived, one line of diff each. A survivor listed in
EQUIVALENT (it changes no behaviour) is printed with its reason; the goal is at least 90% killed in every module.

    python scripts/mutation.py                 # every module, one after the other
    python scripts/mutation.py stats metrics   # some of them
    python scripts/mutation.py --report stats  # print the last run's results without running again
    python scripts/mutation.py --tests-at 9141ca1 stats   # the score the tests of that commit gave
    python scripts/mutation.py fastmlp --only _gradients   # one function's mutants

Each module gets a work folder mutants/<module>/ (out of git), so the results of one module's run never reset
another's; a rerun tests again the mutants of the functions that changed and every mutant that survived, and keeps
the rest killed. Delete the folder to start afresh.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "mutants"


@dataclass(frozen=True)
class Module:
    source: str
    tests: tuple[str, ...]   # pytest's arguments that select the tests covering the module
    # The functions (or classes) whose mutants count, where not the whole module: what the guarantee rests on.
    functions: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()   # environment variables of the mutmut run

    def patterns(self) -> list[str]:
        """mutmut's names for the mutants of `functions` (a method's is xǁClassǁmethod__mutmut_N)."""
        dotted = self.source.removeprefix("src/").removesuffix(".py").replace("/", ".")
        return [f"{dotted}.{prefix}{name}{suffix}__mutmut_*" for name in self.functions
                for prefix, suffix in (("x_", ""), ("xǁ", "ǁ*"))]

    def counts(self, key: str) -> bool:
        return not self.functions or any(fnmatch.fnmatchcase(key, p) for p in self.patterns())


MODULES = {
    # The calibration tests (hundreds of simulated verdicts each) find no mutant that the tests pinned against
    # scipy miss, at seconds a mutant.
    "stats": Module("src/badminima/core/stats.py", ("tests/test_stats.py", "tests/test_claims.py",
                                                    "-k", "not calibrated")),
    "store": Module("src/badminima/core/store.py", ("tests/test_store.py",)),
    "layout": Module("src/badminima/core/layout.py", ("tests/test_store.py",)),
    "algorithm1": Module("src/badminima/paper_a/algorithm1.py", ("tests/test_adversarial.py",)),
    "metrics": Module("src/badminima/core/metrics.py", ("tests/test_metrics.py", "tests/test_image_metrics.py")),
    "config": Module("src/badminima/core/config.py", ("tests/test_config_checks.py",)),
    # The step engines: a step's forward pass, gradients and update by tensors (the epoch loops and the bookkeeping
    # around them keep train's contract, which test_train checks, and at about 6 s a mutant all of the module's
    # 1140 would take two hours on two cores). The denormal tests start processes of their own and reach no step
    # engine that the others do not.
    "fastmlp": Module("src/badminima/core/fastmlp.py", ("tests/test_fastmlp.py", "-k", "not flush_denormals"),
                      ("_forward", "_correct", "_gradients", "_update")),
    # The fused step (core/fused.py): the wrapper that hands the members to the compiled kernel and the check of where
    # it applies.
    # mutmut leaves decorated functions alone, so the numba kernels themselves are not mutated; the tests that
    # pin them against autograd run here with numba's compiler off (the kernels as Python, same source), since a
    # mutated module file defeats numba's cache and each mutant would compile for 30-50 s.
    "fused": Module("src/badminima/core/fused.py",
                    ("tests/test_fastmlp.py", "-k",
                     "(fused_kernel or fused_step_applies or not_computed) and not denormals"),
                    ("steps", "applies"), (("NUMBA_DISABLE_JIT", "1"),)),
}

# Survivors that change no behaviour, by mutant name: the mutated line as mutmut writes it (so an entry that no
# longer names that mutant, after the module changed, is shown as unexplained) and why it is equivalent.
EQUIVALENT: dict[str, tuple[str, str]] = {
    "badminima.core.config.x_check_range__mutmut_34": (
        "if value >= 0 else", "the value there is beyond 2**63 - 1 either way, never 0"),
    "badminima.core.config.x_check_range__mutmut_35": (
        "if value > 1 else", "the value there is beyond 2**63 - 1 either way, never 0 or 1"),
    "badminima.paper_a.algorithm1.x_zero_out__mutmut_2": (
        "chunk: int = 4097", "the chunk bounds memory only: any chunk draws the same values (a test checks it)"),
    "badminima.paper_a.algorithm1.x_algorithm1_set__mutmut_32": (
        "torch.randint(classes, (len(copies),)", "torch.randint's low is 0 by default"),
    "badminima.core.metrics.x_margin__mutmut_3": (
        "steps: int = 61", "a finer walk: the same distance, bisected to 1e-7 either way"),
    "badminima.core.metrics.x_margin__mutmut_4": (
        "refine: int = 21", "one more bisection: the same distance to 1e-7 instead of 2e-7"),
    "badminima.core.metrics.x_margin__mutmut_24": (
        "torch.linspace(1, radius", "a longer first step: a single crossing in it is still bisected from 0"),
    "badminima.core.metrics.x_fgsm_accuracy__mutmut_1": (
        'chunk: int = 1001', "each image's gradient sign does not depend on the chunk it is in (a test checks chunks)"),
    "badminima.core.metrics.x_fgsm_accuracy__mutmut_3": (
        'mean.view(1, -1, 1, 1).to(None)', "a move to x's device and dtype, a no-op where they match (the CPU tests; test_cuda's x is on the GPU)"),
    "badminima.core.metrics.x_fgsm_accuracy__mutmut_17": (
        'std.view(1, -1, 1, 1).to(None)', "a move to x's device and dtype, a no-op where they match (the CPU tests; test_cuda's x is on the GPU)"),
    "badminima.core.metrics.x_fgsm_accuracy__mutmut_8": (
        'mean.view(-1, 1, 1)', '(C, 1, 1) broadcasts against (n, C, H, W) as (1, C, 1, 1) does'),
    "badminima.core.metrics.x_fgsm_accuracy__mutmut_22": (
        'std.view(-1, 1, 1)', '(C, 1, 1) broadcasts against (n, C, H, W) as (1, C, 1, 1) does'),
    "badminima.core.metrics.x_margin__mutmut_30": (
        'side = logit_fn(points) >= 0', 'a point with a logit of exactly 0 is on the boundary: distance 0 from either side'),
    "badminima.core.metrics.x_margin__mutmut_46": (
        '.reshape(grid.shape[:3]) >= 0)', 'a walk point with a logit of exactly 0 is the boundary: the crossing is found there either way'),
    "badminima.core.metrics.x_margin__mutmut_117": (
        '.reshape(mid.shape) >= 0)', 'a bisection point with a logit of exactly 0 is the boundary: the crossing is found there either way'),
    "badminima.core.metrics.x_margin__mutmut_67": (
        'torch.where(first <= steps', 'with no flip, radii[steps - 1] is the radius itself'),
    "badminima.core.metrics.x_margin__mutmut_79": (
        'torch.where(first >= 0', 'the next line sets lo to 0 wherever first is 0'),
    "badminima.core.metrics.x_margin__mutmut_86": (
        'torch.tensor(1.0))', 'the next line sets lo to 0 wherever first is 0, the only place this value is taken'),
    "badminima.core.metrics.x_margin__mutmut_98": (
        'crossed = first <= steps', 'a ray without a flip then keeps hi at the radius, what it returns anyway'),
    "badminima.core.metrics.x_margin__mutmut_80": (
        'torch.where(first > 1', 'bisection from 0 rather than the step before: the same single crossing, to 2e-7'),
    "badminima.core.metrics.x_margin__mutmut_95": (
        'torch.where(first == 1', 'bisection from 0 rather than the step before: the same single crossing, to 2e-7'),
    "badminima.core.metrics.x_margin__mutmut_83": (
        'radii[(first - 2)', 'bisection from two steps before: the same single crossing, to 2e-7'),
    "badminima.core.metrics.xǁ_PoweredPoolsǁ__torch_function____mutmut_20": (
        'device=None)', 'the unit images on the default device: the same on the CPU, where path norms are computed'),
    "badminima.core.metrics.xǁ_PoweredPoolsǁ__torch_function____mutmut_23": (
        'dtype=x.dtype, )', 'the unit images on the default device: the same on the CPU, where path norms are computed'),
    "badminima.core.stats.x__per_seed__mutmut_15": (
        'max(2, diffs', 'differs only with one seed, whose one-seed verdict never shows the count'),
    "badminima.core.stats.x__series__mutmut_5": (
        'pd.Series(dict(values), dtype=None)', 'every caller converts the values (astype float, bool or object) before reading them'),
    "badminima.core.stats.x__series__mutmut_7": (
        'pd.Series(dict(values), )', 'every caller converts the values (astype float, bool or object) before reading them'),
    "badminima.core.stats.x__series__mutmut_9": (
        's.index.nlevels == 1 or s.index.name is None', "a MultiIndex's name can be set without touching its level names"),
    "badminima.core.stats.x_pair__mutmut_13": (
        'a.astype(None)', 'numpy reads a dtype of None as float64'),
    "badminima.core.stats.x_pair__mutmut_14": (
        'astype(None)', 'numpy reads a dtype of None as float64'),
    "badminima.core.stats.x_pair__mutmut_15": (
        'b.reindex(None)', "every caller subtracts the sides, which pandas aligns by key whatever b's order"),
    "badminima.core.fastmlp.x__update__mutmut_14": (
        "if (first) and False else", "the momentum buffers start at zero: momentum times 0 plus g is the copy of g"),
    "badminima.core.stats.x__balance__mutmut_36": (
        "if x <= y else", "x == y returned a tie just above"),
    "badminima.core.stats.x_fewer__mutmut_37": (
        '"XXtieXX"', "the columns are read by position; no other line names the tie column"),
    "badminima.core.stats.x_fewer__mutmut_38": (
        '"TIE"', "the columns are read by position; no other line names the tie column"),
    "badminima.core.stats.x_fewer__mutmut_90": (
        "(counts.index.nlevels > 1) or True", "grouping unique seeds by seed only sorts them, and only sums follow"),
    "badminima.core.stats.x_fewer__mutmut_94": (
        "counts.index.nlevels >= 1", "grouping unique seeds by seed only sorts them, and only sums follow"),
    "badminima.core.stats.x_holm__mutmut_4": (
        "[2.0] * m", "the loop overwrites every entry of the initial list"),
    "badminima.core.fused.x_steps__mutmut_86": (
        'zip(flat[:4], work[:3])', 'zip stops at the shorter list: the same three pairs'),
    "badminima.core.fused.x_steps__mutmut_87": (
        'zip(flat[:3], work[:4])', 'zip stops at the shorter list: the same three pairs'),
    "badminima.core.fused.x_steps__mutmut_50": (
        'numba.set_num_threads(None)', "reached only where numba's pool does not flush denormals; with the compiler off it is the calling thread, which does (the denormal tests, with it on, reach it)"),
    "badminima.core.fused.x_steps__mutmut_51": (
        'numba.set_num_threads(2)', "reached only where numba's pool does not flush denormals; with the compiler off it is the calling thread, which does (the denormal tests, with it on, reach it)"),
    "badminima.core.layout.x_parsed__mutmut_32": (
        'weights_only=None)', "torch.load's default is weights_only=True since torch 2.6 (2.13 is pinned)"),
    "badminima.core.layout.x_parsed__mutmut_35": (
        'map_location="cpu", ))', "torch.load's default is weights_only=True since torch 2.6 (2.13 is pinned)"),
    "badminima.core.store.xǁStoreǁ_compute__mutmut_94": (
        'return self._checked(kind, path, None)', 'the manifest was just written with this data: the check would compare it with itself'),
    "badminima.core.store.xǁStoreǁload__mutmut_6": (
        'return self._checked(None, path, data)', 'a look that fails falls through to the locked look, which reads the same result'),
    "badminima.book.store_commands.x__kernels__mutmut_2": (
        'sort_keys=None)', 'manifests are written with sorted keys (a test pins their bytes): read back, the kernels are in order already'),
    "badminima.book.store_commands.x__kernels__mutmut_4": (
        '.get("kernels"), )', 'manifests are written with sorted keys (a test pins their bytes): read back, the kernels are in order already'),
    "badminima.book.store_commands.x__kernels__mutmut_8": (
        'sort_keys=False)', 'manifests are written with sorted keys (a test pins their bytes): read back, the kernels are in order already'),
    "badminima.core.layout.x_sha256__mutmut_13": (
        'f.read(None)', 'the block size bounds memory only: the same bytes give the same digest'),
    "badminima.core.layout.x_sha256__mutmut_15": (
        'f.read(2 << 20)', 'the block size bounds memory only: the same bytes give the same digest'),
    "badminima.core.layout.x_sha256__mutmut_16": (
        'f.read(1 << 21)', 'the block size bounds memory only: the same bytes give the same digest'),
    "badminima.core.layout.x_parsed__mutmut_31": (
        'map_location=None', "differs only for weights written on a GPU, which the store's tests cannot write here"),
    "badminima.core.layout.x_parsed__mutmut_34": (
        'torch.load(p, weights_only=True)', "differs only for weights written on a GPU, which the store's tests cannot write here"),
    "badminima.core.store.xǁStoreǁ_compute__mutmut_4": (
        'work.mkdir(parents=None', "_lock made the kind's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁ_compute__mutmut_6": (
        'work.mkdir(exist_ok=True)', "_lock made the kind's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁ_compute__mutmut_8": (
        'work.mkdir(parents=False', "_lock made the kind's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁload_or_run_many__mutmut_37": (
        'work.mkdir(parents=None', "_lock made the group's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁload_or_run_many__mutmut_39": (
        'work.mkdir(exist_ok=True)', "_lock made the group's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁload_or_run_many__mutmut_41": (
        'work.mkdir(parents=False', "_lock made the group's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁadopt__mutmut_24": (
        'work.mkdir(parents=None)', "_lock made the kind's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁadopt__mutmut_25": (
        'work.mkdir(parents=False)', "_lock made the kind's folder (for the lock file) before"),
    "badminima.core.store.xǁStoreǁremove__mutmut_2": (
        'wait=None)', 'None is false: the lock is tried without waiting, as with False'),
    "badminima.core.store.xǁStoreǁ_set_aside__mutmut_8": (
        '% 11**9', 'any modulus of at least 10**9 keeps the nanoseconds that tell set-asides within one second apart'),
    "badminima.core.store.xǁStoreǁ_set_aside__mutmut_9": (
        '% 10**10', 'any modulus of at least 10**9 keeps the nanoseconds that tell set-asides within one second apart'),
    "badminima.core.store.xǁReadOnlyStoreǁload_or_run_many__mutmut_3": (
        'self.load_or_run(kind, c, None, data)', 'a read-only store never runs what it is given'),
}

# mutmut's exit codes (mutmut.stats.status_by_exit_code): a test failed or errored, the mutant ran out of time
# or crashed its process. Each is the tests noticing the mutant.
KILLED = {1, 3, 24, -24, 152, 255, 36, -9, -11, 37}
# A timeout that other work on the machine caused would count as a kill: a rerun tests those again too.
TIMEOUTS = {24, -24, 152, 255, 36}


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _work_folder(name: str, tests_at: str | None) -> Path:
    """mutants/<name>/ seen by mutmut as a project root: the sources, tests and settings linked in. With
    `tests_at` (a commit), mutants/<name>@<commit>/ with the tests as they were at that commit, to score the
    tests of another time (the score before new tests) against today's module."""
    folder = WORK / (f"{name}@{tests_at}" if tests_at else name)
    folder.mkdir(parents=True, exist_ok=True)
    for item in ("src", "pyproject.toml") if tests_at else ("src", "tests", "pyproject.toml"):
        link = folder / item
        if not link.is_symlink():
            link.symlink_to(ROOT / item)
    if tests_at and not (folder / "tests").exists():
        archive = subprocess.run(["git", "archive", tests_at, "tests"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _configure(module: Module) -> None:
    """mutmut's settings from pyproject.toml, narrowed to one module and its tests (mutmut reads one set of
    settings per project; the workers are forked from this process and inherit them)."""
    from mutmut import configuration

    settings = configuration._load_config()
    settings.only_mutate = [module.source]
    # A test file that does not exist (yet, at the commit of --tests-at) selects nothing
    settings.pytest_add_cli_args_test_selection = [t for t in module.tests
                                                   if not t.startswith("tests/") or Path(t).exists()]
    configuration._config = settings


def _run_inside(name: str, max_children: int) -> None:
    """The mutmut run itself, in the process started by `run` with the work folder as its directory."""
    _configure(MODULES[name])
    from mutmut.__main__ import cli

    cli(["run", "--max-children", str(max_children), *MODULES[name].patterns()], standalone_mode=False)


def _retest_survivors(name: str, folder: Path) -> None:
    """Forgets the verdict on every mutant that was not killed (or was killed by a timeout), so that the run tests
    it again: mutmut tests again only the mutants of a changed function, not the survivors that a new test may now
    kill. Forgets which tests reach which function too: mutmut records that only for tests it has not seen, so a
    test changed under its old name would keep its old reach."""
    module = MODULES[name]
    if not (folder / "mutants" / (module.source + ".meta")).exists():
        return
    (folder / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    _configure(module)
    from mutmut.mutation.data import SourceFileMutationData

    with _inside(folder):
        data = SourceFileMutationData(path=module.source)
        data.load()
        data.exit_code_by_key = {key: code if code in KILLED - TIMEOUTS else None
                                 for key, code in data.exit_code_by_key.items()}
        data.save()


def run(name: str, folder: Path, max_children: int, only: list[str]) -> float:
    """Runs mutmut over one module in a process of its own (mutmut keeps its state in module globals); returns the
    seconds it took. mutmut's progress goes to run.log in the work folder."""
    _retest_survivors(name, folder)
    start = time.monotonic()
    with open(folder / "run.log", "w") as log:
        done = subprocess.run([sys.executable, __file__, "--inside", name, "--max-children", str(max_children),
                               *(["--only", *only] if only else [])],
                              cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **dict(MODULES[name].env)})
    if done.returncode != 0:
        sys.exit(f"mutmut failed on {name} (exit {done.returncode}); see {folder / 'run.log'}")
    return time.monotonic() - start


def _changed_line(name: str, path: str) -> str:
    """The mutant's diff in one line: the original line(s) and what mutmut made of them."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=path).splitlines()[2:]
    old = " ".join(line[1:].strip() for line in diff if line.startswith("-"))
    new = " ".join(line[1:].strip() for line in diff if line.startswith("+"))
    return f"{old}  ->  {new}"


def report(name: str, folder: Path) -> tuple[int, int, int] | None:
    """Prints one module's score and survivors; returns (killed, explained as equivalent, total)."""
    module = MODULES[name]
    if not (folder / "mutants" / (module.source + ".meta")).exists():
        print(f"{name}: not run yet")
        return None
    _configure(module)
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    with _inside(folder):
        data = SourceFileMutationData(path=module.source)
        data.load()
        codes = {key: code for key, code in data.exit_code_by_key.items() if module.counts(key)}
        survivors = sorted((key for key, code in codes.items() if code not in KILLED), key=_numbered)
        lines = {key: _changed_line(key, module.source) for key in survivors}
    killed = len(codes) - len(survivors)
    explained = [key for key in survivors if key in EQUIVALENT and EQUIVALENT[key][0] in lines[key]]
    print(f"{name} ({module.source}): {killed} / {len(codes)} killed ({_percent(killed, len(codes))}), "
          f"{len(explained)} equivalent, {len(survivors) - len(explained)} unexplained")
    for key in survivors:
        why = f"equivalent: {EQUIVALENT[key][1]}" if key in explained else status_by_exit_code[codes[key]]
        print(f"  {key}  [{why}]\n      {lines[key]}")
    unmutated = _decorated(ROOT / module.source, module)
    if unmutated:
        print(f"  not mutated (mutmut leaves decorated functions alone): {', '.join(unmutated)}")
    return killed, len(explained), len(codes)


def _decorated(path: Path, module: Module) -> list[str]:
    """The functions of the module that mutmut 3 does not mutate: those with a decorator other than staticmethod
    or classmethod (a numba kernel, a torch.no_grad function)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list and not (
                len(node.decorator_list) == 1 and isinstance(node.decorator_list[0], ast.Name)
                and node.decorator_list[0].id in ("staticmethod", "classmethod")):
            if not module.functions or node.name in module.functions:
                found.append(node.name)
    return found


def _numbered(key: str) -> tuple[str, int]:
    function, _, number = key.rpartition("__mutmut_")
    return function, int(number)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--max-children", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--report", action="store_true", help="print the last results without running")
    parser.add_argument("--tests-at", metavar="COMMIT", help="score the tests as they were at COMMIT")
    parser.add_argument("--only", nargs="+", metavar="FUNCTION",
                        help="test and count only these functions (or classes) of the module")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in args.modules or ([args.inside] if args.inside else []):
        if args.only and name in MODULES:
            MODULES[name] = replace(MODULES[name], functions=tuple(args.only))
    if args.inside:
        return _run_inside(args.inside, args.max_children)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"module {unknown[0]!r} is not one of {', '.join(MODULES)}")
    if args.max_children < 1:
        parser.error(f"--max-children={args.max_children} is not allowed; allowed: an integer >= 1")
    scores = {}
    for name in args.modules or list(MODULES):
        folder = _work_folder(name, args.tests_at)
        seconds = None if args.report else run(name, folder, args.max_children, args.only)
        scores[name] = (report(name, folder), seconds)
    _summary(scores)


def _summary(scores: dict[str, tuple[tuple[int, int, int] | None, float | None]]) -> None:
    print("\nmodule       killed / total        equivalent   time")
    for name, (score, seconds) in scores.items():
        took = "" if seconds is None else f"{seconds / 60:.1f} min"
        if score is None:
            print(f"{name:12} not run")
            continue
        killed, explained, total = score
        print(f"{name:12} {killed:4} / {total:<4} {_percent(killed, total):>7}   {explained:6}      {took}")


if __name__ == "__main__":
    main()
