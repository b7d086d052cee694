"""The book's chapters: jupytext sources in notebooks/, executed by papermill into book/chapters/, then built."""
from __future__ import annotations

import ast
import contextlib
import datetime
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jupytext
import nbformat
import papermill
import torch
import yaml

from badminima.core import convnets, jobs, runtime
from badminima.core.config import ParameterError, as_dict, check_choice
from badminima.core.journal import JOURNAL
from badminima.core.stats import Verdict
from badminima.core.store import Store
from badminima.beyond import protocol as beyond
from badminima.book import progress, show
from badminima.paper_a import claims as paper_a_claims
from badminima.paper_a import protocol as paper_a
from badminima.paper_a import sketch
from badminima.paper_b import boundaries as paper_b_boundaries
from badminima.paper_b import claims as paper_b_claims
from badminima.paper_b import live as paper_b_live
from badminima.paper_b import protocol as paper_b


def _anywhere(config: Callable[..., Any]) -> Callable[..., Any]:
    """A chapter's configuration from its three parameters: `scale`, `overrides` (the configuration's fields that
    differ from the scale's values, checked by the configuration itself) and `executor` (where its jobs run, not
    what they compute, so it is checked and kept out of the configuration: the results' keys do not change)."""
    def build(scale: str, executor: str = "local", overrides: dict[str, Any] | None = None) -> Any:
        jobs.check_executor(executor)
        overrides = {} if overrides is None else overrides
        if not isinstance(overrides, dict) or not all(isinstance(k, str) and k != "scale" for k in overrides):
            raise ParameterError(f"overrides={overrides!r} must be a mapping of the configuration's fields to values, "
                                 "such as {'seeds': [0, 1]} (the scale is a parameter of its own)")
        return config(scale, **overrides)
    return build


@dataclass(frozen=True)
class Chapter:
    source: str                     # jupytext source under notebooks/
    # builds the chapter's configuration from its parameters (ParameterError if one is bad); None: the chapter
    # builds none, and a parameter only needs the type of its default
    config: Callable[..., Any] | None
    # wall seconds at the default (cpu) scale from an empty store, measured from a fresh clone on a quiet 2-core
    # machine (AVX-512, pinned kernels; commit d0ab61b, `make book` 44 min 49 s): what `make book` expects without
    # an earlier execution
    cpu_seconds: float
    part: str | None                # its part of the book (a key of PARTS); None: the landing page, the toc's root
    scales: tuple[str, ...] = ()    # the scales `config` takes: its protocol's table, so the command line offers them
    # the function the chapter shows its verdicts with, which the "Does it reproduce?" page calls again; the paper
    # whose claims they test is the chapter's part
    verdicts: Callable[[Any, Store], list[Verdict]] | None = None


# The book's parts, in the order its table of contents shows them.
PARTS = {"summary": "Summary", "A": "Paper A (Liu, Papailiopoulos, Achlioptas 2020)",
         "B": "Paper B (Ravichandran et al. 2023)", "beyond": "Beyond both papers"}

# Each chapter lands as book/chapters/<name>.ipynb (see toc). Chapters execute in this order; "reproduce", "status"
# and the landing page ("index") read the other chapters' stored results and records, so they come last.
CHAPTERS = {
    "paper_a_sketch": Chapter("paper_a_sketch.md", _anywhere(sketch.config_for), 100, "A", tuple(sketch.SCALES),
                              paper_a_claims.sketch_verdicts),
    "paper_a_training": Chapter("paper_a_training.md", _anywhere(paper_a.config_for), 597, "A",
                                tuple(paper_a.SCALES), paper_a_claims.training_verdicts),
    "paper_a_replication": Chapter("paper_a_replication.md", _anywhere(paper_a.config_for), 186, "A",
                                   tuple(paper_a.SCALES), paper_a_claims.replication_verdicts),
    "paper_a_heuristics": Chapter("paper_a_heuristics.md", _anywhere(paper_a.config_for), 262, "A",
                                  tuple(paper_a.SCALES), paper_a_claims.heuristics_verdicts),
    "paper_a_complexity": Chapter("paper_a_complexity.md", _anywhere(paper_a.config_for), 80, "A",
                                  tuple(paper_a.SCALES), paper_a_claims.complexity_verdicts),
    "paper_b_widths": Chapter("paper_b_widths.md", _anywhere(paper_b.config_for), 456, "B", tuple(paper_b.SCALES),
                              paper_b_claims.widths_verdicts),
    "paper_b_boundaries": Chapter("paper_b_boundaries.md", _anywhere(paper_b_boundaries.config_for), 610, "B",
                                  tuple(paper_b.SCALES),
                                  paper_b_claims.boundaries_verdicts),
    "paper_b_budget": Chapter("paper_b_budget.md", _anywhere(paper_b.budget_config_for), 72, "B",
                              tuple(paper_b.BUDGET_SCALES)),
    "beyond_minima": Chapter("beyond_minima.md", _anywhere(beyond.config_for), 126, "beyond", tuple(beyond.SCALES)),
    "beyond_repairs": Chapter("beyond_repairs.md", _anywhere(beyond.repairs_config_for), 156, "beyond",
                              tuple(beyond.REPAIR_SCALES)),
    "paper_b_live": Chapter("paper_b_live.md", _anywhere(paper_b_live.config_for), 4, "B", tuple(paper_b.SCALES)),
    "reproduce": Chapter("reproduce.md", None, 20, "summary"),
    "status": Chapter("status.md", None, 5, "summary"),
    "index": Chapter("index.md", None, 8, None),
}

# Every scale some chapter takes, the widest table first so that they keep its order (smallest to largest); `book`
# executes every chapter, so it offers only the scales they all take.
SCALES = tuple(dict.fromkeys(s for c in sorted(CHAPTERS.values(), key=lambda c: -len(c.scales)) for s in c.scales))
BOOK_SCALES = tuple(s for s in SCALES if all(s in c.scales for c in CHAPTERS.values() if c.scales))


def toc() -> dict[str, Any]:
    """The book's table of contents, as jupyter-book reads it: the landing page, then each part's chapters."""
    page = lambda name: f"book/chapters/{name}"
    parts = [{"caption": caption, "chapters": [{"file": page(n)} for n, c in CHAPTERS.items() if c.part == part]}
             for part, caption in PARTS.items()]
    return {"format": "jb-book", "root": page(next(n for n, c in CHAPTERS.items() if c.part is None)), "parts": parts}


def write_toc(root: Path) -> Path:
    """Write `toc()` as `root`/_toc.yml, the file jupyter-book reads; the committed one is this output (a test checks
    they agree), so the chapters are listed only in CHAPTERS."""
    path = Path(root) / "_toc.yml"
    path.write_text("# Written by badminima.book.chapters.write_toc from CHAPTERS: edit that, not this file.\n"
                    + yaml.safe_dump(toc(), sort_keys=False))
    return path


def declared_parameters(notebook: jupytext.NotebookNode) -> dict[str, Any]:
    """The names and defaults of a notebook's cell tagged `parameters` (plain assignments of literals)."""
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    return {target.id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
            for target in node.targets}


def parameters_of(name: str, root: Path) -> dict[str, Any]:
    """Chapter `name`'s parameters and their defaults."""
    check_choice("chapter", name, CHAPTERS)
    return declared_parameters(jupytext.read(Path(root) / "notebooks" / CHAPTERS[name].source))


def folded(name: str, root: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """`parameters` as chapter `name` declares them: where it has `overrides`, a name it does not declare is a field
    of its configuration and goes there (merged with an `overrides` given too), so `-p lr 0.05` means
    `overrides = {"lr": 0.05}`."""
    declared = parameters_of(name, root)
    fields = {k: v for k, v in parameters.items() if k not in declared}
    if "overrides" not in declared or not fields:
        return dict(parameters)
    given = parameters.get("overrides") or {}
    if not isinstance(given, dict):
        return dict(parameters)   # `check` refuses it, with its own line
    return {**{k: v for k, v in parameters.items() if k in declared}, "overrides": {**given, **fields}}


def flat(parameters: dict[str, Any]) -> dict[str, Any]:
    """A chapter's parameters with its overrides spread out beside them, as a reader or a command line names them."""
    overrides = parameters.get("overrides")
    rest = {k: v for k, v in parameters.items() if k != "overrides"}
    return {**rest, **overrides} if isinstance(overrides, dict) else dict(parameters)


def check(name: str, root: Path, parameters: dict[str, Any]) -> None:
    """Raise ParameterError, naming the parameter as papermill takes it, unless `name` is a chapter that declares
    every one of `parameters` and builds its configuration from them."""
    declared = parameters_of(name, root)
    for key, value in parameters.items():
        if key not in declared:
            raise ParameterError(f"{key}={value!r} is not a parameter of chapter {name}; allowed: "
                                 f"{', '.join(declared)}")
        kind = type(declared[key])
        if CHAPTERS[name].config is None and declared[key] is not None and not isinstance(value, kind):
            raise ParameterError(f"{key}={value!r} is not a {kind.__name__}; allowed: a {kind.__name__} such as "
                                 f"{declared[key]!r}")
    if CHAPTERS[name].config is not None:
        try:
            config = CHAPTERS[name].config(**{**declared, **parameters})
        except ParameterError as err:   # the command line offers every scale; say which chapter lacks this one
            raise ParameterError(f"{err} (chapter {name})") if err.name == "scale" else err
        if isinstance(config, paper_a.PaperAConfig):
            for model in config.models:
                check_fits("width", model, paper_a.model_width(config, model))


# The bytes a network's training holds per parameter: float32 weights, their gradients, SGD's momentum and the
# optimizer's copy in a checkpoint, with room for activations.
BYTES_PER_PARAMETER = 32


def check_fits(name: str, model: str, width: float) -> None:
    """ParameterError, naming the parameter `name`, unless `model` at `width` fits in this machine's memory: a
    width too large for its integers or its memory fails deep inside torch otherwise."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with torch.device("meta"):   # sizes only: nothing is allocated
            size = sum(p.numel() for p in convnets.build(model, 10, width=width).parameters())
    except (TypeError, OverflowError, RuntimeError):   # a channel count beyond 64-bit integers
        size = math.inf
    if size * BYTES_PER_PARAMETER > memory:
        with torch.device("meta"):
            unit = sum(p.numel() for p in convnets.build(model, 10, width=1.0).parameters())
        widest = math.sqrt(memory / BYTES_PER_PARAMETER / unit)   # parameters grow with the width's square
        raise ParameterError(f"{name}={width!r} makes {model} too large for this machine's "
                             f"{memory / 2**30:.0f} GiB of memory; allowed: a width up to about {widest:.3g}")


def execute(name: str, root: Path, parameters: dict | None = None, out_dir: Path | None = None,
            cell_timeout: int | None = None, position: str = "") -> Path:
    """Execute one chapter with papermill, after checking its parameters (see `check`), showing a progress bar over
    the results it loads or trains. The executed notebook replaces the previous one only on success; a failed
    execution is kept beside it as <name>.failed.ipynb. `cell_timeout` (seconds) fails a cell that runs longer, so
    a hung kernel cannot stall the tests. The executed notebook records how it was made (see `record`)."""
    root = Path(root).resolve()
    parameters = folded(name, root, parameters or {})
    check(name, root, parameters)
    out_dir = Path(out_dir) if out_dir else root / "book" / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    source = jupytext.read(root / "notebooks" / CHAPTERS[name].source)
    source.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    plain = out_dir / f"{name}.source.ipynb"
    jupytext.write(source, plain)
    running = out_dir / f"{name}.running.ipynb"
    journal = out_dir / f"{name}.journal"
    journal.unlink(missing_ok=True)
    final = out_dir / f"{name}.ipynb"
    # Only the kernel gets these variables: this process's environment is left as it was.
    kernel_env = {"BADMINIMA_RESULTS": os.environ.get("BADMINIMA_RESULTS", str(root / "results")),
                  JOURNAL: str(journal), show.BOOK_EXECUTION: "1", **runtime.KEEP_FREED_MEMORY}
    total = progress.results_before(final, {**parameters_of(name, root), **parameters})
    start = time.time()
    try:
        with runtime.environment(**kernel_env), progress.Bar(journal, f"{position}{name}", total):
            _papermill(plain, running, parameters=parameters, kernel_name="python3", cwd=str(root),
                       progress_bar=False, execution_timeout=cell_timeout)
    except BaseException:
        if running.exists():
            os.replace(running, out_dir / f"{name}.failed.ipynb")
        raise
    finally:
        plain.unlink()
    record(running, name, root, parameters, time.time() - start, progress.counts(journal), progress.results(journal))
    journal.unlink(missing_ok=True)
    os.replace(running, final)
    return final


# How long an interrupted chapter's kernel has to stop its cell (its workers release their locks) before it is ended.
STOP_SECONDS = 60.0


def _papermill(*args: Any, **kwargs: Any) -> None:
    """papermill.execute_notebook in a thread of its own. In the main thread nbclient would take SIGINT and SIGTERM
    for itself and, while a cell runs, wait for it to end; here the main thread takes them (jobs.interruptible)
    and interrupts the kernel as Jupyter does (SIGINT: the running cell raises KeyboardInterrupt, so its jobs
    unwind), waits for papermill to shut the kernel down, and ends whatever the kernel leaves behind."""
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            papermill.execute_notebook(*args, **kwargs)
        except BaseException as err:
            outcome.append(err)

    before = set(jobs.descendants(os.getpid()))
    thread = threading.Thread(target=target, name="papermill", daemon=True)
    with jobs.interruptible():
        thread.start()
        try:
            thread.join()
        except jobs.Interrupted:
            started = [pid for pid in jobs.descendants(os.getpid()) if pid not in before]
            _stop_kernel([pid for pid in jobs.children(os.getpid()) if pid in started], started, thread)
            raise
    if outcome:
        raise outcome[0]


def _stop_kernel(kernels: list[int], started: list[int], thread: threading.Thread) -> None:
    """Interrupt the `kernels` until papermill (in `thread`) sees their cell fail and shuts them down; SIGTERM, then
    SIGKILL, what is still there of the processes papermill `started` (the kernels and their workers) after
    STOP_SECONDS."""
    deadline = time.monotonic() + STOP_SECONDS
    while thread.is_alive() and time.monotonic() < deadline:
        # Again each second: a kernel between two cells ignores SIGINT, and would go on to the next.
        for pid in jobs.alive(kernels):
            with contextlib.suppress(ProcessLookupError):   # it ended since
                os.kill(pid, signal.SIGINT)
        thread.join(1.0)
    jobs.end(started, STOP_SECONDS / 4)
    thread.join(STOP_SECONDS / 4)


def _commit(root: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + (" (with uncommitted changes)" if dirty else "")


def _yaml(value: Any) -> str:
    """A parameter's value as YAML in one line, as papermill's -y and the command line's -p read it."""
    if isinstance(value, str):
        return repr(value)
    if not isinstance(value, (list, tuple, dict)):
        return str(value)   # a number or a bool (YAML would end a lone scalar with a line "...")
    return yaml.safe_dump(as_dict(value), default_flow_style=True, sort_keys=False, width=10**6).strip()


def rerun_commands(name: str, parameters: dict[str, Any]) -> str:
    """The shell commands that execute the chapter again with these parameters: the project's command line (each
    override a -p of its own), then papermill on the jupytext source."""
    given = {k: v for k, v in parameters.items() if v is not None and v != {}}
    cli = f"python -m badminima chapter {name}" + "".join(
        f" --scale {v}" if k == "scale" else f" -p {k} \"{_yaml(v)}\"" for k, v in flat(given).items())
    # papermill's -p reads a number or a word; a list, a dict or a bool goes through -y as YAML.
    plain = lambda v: isinstance(v, (int, float, str)) and not isinstance(v, bool)
    paper = "".join(f" -p {k} {v}" if plain(v) else f" -y \"{k}: {_yaml(v)}\"" for k, v in given.items())
    return (f"{cli}\n"
            f"python -m jupytext --to ipynb notebooks/{CHAPTERS[name].source} -o /tmp/{name}.ipynb\n"
            f"papermill /tmp/{name}.ipynb /tmp/{name}-out.ipynb{paper}")


def record(notebook: Path, name: str, root: Path, given: dict[str, Any], seconds: float,
           runs: dict[str, int], results: list[str]) -> None:
    """Write into an executed notebook how it was made (metadata `badminima`) and open it with a box saying so:
    the parameters (defaults merged with those given), wall time, results trained and loaded, when, where, from
    which commit, and the commands that re-run it. The parameters cells (the notebook's and papermill's) are
    removed from the page, since the box shows what they set."""
    nb = nbformat.read(notebook, as_version=4)
    parameters = {**declared_parameters(jupytext.read(root / "notebooks" / CHAPTERS[name].source)), **given}
    executed = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = {"chapter": name, "parameters": parameters, "scale": parameters.get("scale"), "seconds": round(seconds, 1),
            "runs": runs, "results": results, "executed": executed, "commit": _commit(root),
            "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPU cores)"}
    nb.metadata["badminima"] = meta
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    shown = ", ".join(f"`{k} = {v!r}`" for k, v in parameters.items())
    # No backticks in the title: a fence's info string may not hold any (CommonMark), and the box would not render.
    scale = f" at scale {meta['scale']}" if meta["scale"] else ""
    box = (f"````{{admonition}} Executed{scale} in {meta['seconds']:.0f} s, {executed}: {runs['trained']} result(s) trained, "
           f"{runs['loaded']} loaded. How to re-run it\n:class: note dropdown\n"
           f"On {meta['machine']}, from commit `{meta['commit']}`.\n\n"
           f"Parameters (`overrides`: the configuration's fields changed from the scale's values): {shown}.\n\n"
           f"To re-run it (the project's command line, or papermill on the jupytext source):\n\n"
           f"```bash\n{rerun_commands(name, given)}\n```\n````")
    title = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(title + 1, nbformat.v4.new_markdown_cell(box, metadata={"tags": ["execution-box"]}))
    nbformat.write(nb, notebook)


def chapter_parameters(root: Path, names: list[str], scale: str, parameters: dict[str, Any] | None = None,
                       executor: str | None = None) -> dict[str, dict[str, Any]]:
    """Each chapter's parameters: `parameters`, with `scale` and `executor` for the chapters that declare them; every
    name and parameter checked."""
    for name in names:
        check_choice("chapter", name, CHAPTERS)
    common = {"scale": scale, **({"executor": executor} if executor is not None else {})}
    given = {name: folded(name, root, {**{k: v for k, v in common.items() if k in parameters_of(name, root)},
                                       **(parameters or {})}) for name in names}
    for name in names:
        check(name, root, given[name])
    return given


def execute_all(root: Path, scale: str, names: list[str] | None = None, cell_timeout: int | None = None,
                parameters: dict[str, Any] | None = None, executor: str | None = None) -> dict[str, float]:
    """Execute chapters (default: all) with the same parameters, and at `scale` (and on `executor`) those that take
    a scale (an executor); returns each chapter's wall time in seconds. Every name and parameter is checked before
    the first chapter starts."""
    names = names or list(CHAPTERS)
    given = chapter_parameters(root, names, scale, parameters, executor)
    print(expected_time(root, given), flush=True)
    times = {}
    for i, name in enumerate(names, 1):
        start = time.time()
        notebook = execute(name, root, given[name], cell_timeout=cell_timeout, position=f"[{i}/{len(names)}] ")
        times[name] = time.time() - start
        runs = nbformat.read(notebook, as_version=4).metadata["badminima"]["runs"]
        print(f"[{i}/{len(names)}] {name}: {times[name]:.0f} s, {runs['trained']} result(s) trained, "
              f"{runs['loaded']} loaded ({_set_text(given[name])})", flush=True)
    return times


def expected_time(root: Path, given: dict[str, dict[str, Any]]) -> str:
    """One line saying how long executing these chapters (name -> parameters given) should take: each chapter's
    last execution with the same parameters, else its measured time at the cpu scale from an empty store."""
    last, measured, unknown, total = 0, 0, [], 0.0
    for name, parameters in given.items():
        notebook = Path(root) / "book" / "chapters" / f"{name}.ipynb"
        meta = nbformat.read(notebook, as_version=4).metadata.get("badminima", {}) if notebook.exists() else {}
        if meta and meta.get("parameters") == {**parameters_of(name, root), **parameters}:
            last, total = last + 1, total + meta["seconds"]
        elif parameters.get("scale", "cpu") == "cpu":
            measured, total = measured + 1, total + CHAPTERS[name].cpu_seconds
        else:
            unknown.append(name)
    sources = [f"{last} chapter(s) as their last execution took"] * bool(last) + \
        [f"{measured} as long as they took at the cpu scale from an empty store (2 cores)"] * bool(measured)
    line = f"expected: about {total / 60:.0f} min" + (f" ({'; '.join(sources)})" if sources else "")
    return line + (f"; no estimate for {', '.join(unknown)} at this scale" if unknown else "")


def _set_text(parameters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in flat(parameters).items()) or "defaults"


def build(root: Path) -> Path:
    """Write the table of contents from CHAPTERS, then build the HTML book from the executed notebooks
    (jupyter-book's own execution is off)."""
    root = Path(root).resolve()
    write_toc(root)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jupyter_book), "build", str(root), "--quiet"], check=True)
    return root / "_build" / "html" / "index.html"
