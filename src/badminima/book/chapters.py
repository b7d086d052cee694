"""The book's chapters: jupytext sources in notebooks/, executed by papermill into book/chapters/, then built."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jupytext
import papermill

from badminima.core import runtime
from badminima.core.config import ParameterError, check_choice, check_range
from badminima.paper_a import protocol as paper_a
from badminima.paper_a import sketch
from badminima.paper_b import protocol as paper_b


def _boundaries(scale: str, fixed_draw: int | None = None, **options: Any) -> Any:
    if fixed_draw is not None:   # the data seed of Figure 6b's one draw
        check_range("fixed_draw", fixed_draw, 0, integer=True)
    return paper_b.config_for(scale, datasets=paper_b.BOUNDARY_DATASETS, **options)


@dataclass(frozen=True)
class Chapter:
    source: str                     # jupytext source under notebooks/
    # builds the chapter's configuration from its parameters (ParameterError if one is bad); None: the chapter
    # builds none, and a parameter only needs the type of its default
    config: Callable[..., Any] | None


# Each chapter lands as book/chapters/<name>.ipynb (see _toc.yml). Chapters execute in this order; "reproduce" reads
# every other chapter's stored results, so it stays last.
CHAPTERS = {
    "paper_a_sketch": Chapter("paper_a_sketch.md", sketch.config_for),
    "paper_a_training": Chapter("paper_a_training.md", paper_a.config_for),
    "paper_a_replication": Chapter("paper_a_replication.md", paper_a.config_for),
    "paper_a_heuristics": Chapter("paper_a_heuristics.md", paper_a.config_for),
    "paper_a_complexity": Chapter("paper_a_complexity.md", paper_a.config_for),
    "paper_b_widths": Chapter("paper_b_widths.md", paper_b.config_for),
    "paper_b_boundaries": Chapter("paper_b_boundaries.md", _boundaries),
    "paper_b_budget": Chapter("paper_b_budget.md", paper_b.budget_config_for),
    "reproduce": Chapter("reproduce.md", None),
}


def declared_parameters(notebook: jupytext.NotebookNode) -> dict[str, Any]:
    """The names and defaults of a notebook's cell tagged `parameters` (plain assignments of literals)."""
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    return {target.id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
            for target in node.targets}


def parameters_of(name: str, root: Path) -> dict[str, Any]:
    """Chapter `name`'s parameters and their defaults."""
    check_choice("chapter", name, CHAPTERS)
    return declared_parameters(jupytext.read(Path(root) / "notebooks" / CHAPTERS[name].source))


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
        CHAPTERS[name].config(**{**declared, **parameters})


def execute(name: str, root: Path, parameters: dict | None = None, out_dir: Path | None = None,
            cell_timeout: int | None = None) -> Path:
    """Execute one chapter with papermill, after checking its parameters (see `check`). The executed notebook
    replaces the previous one only on success; a failed execution is kept beside it as <name>.failed.ipynb.
    `cell_timeout` (seconds) fails a cell that runs longer, so a hung kernel cannot stall the tests."""
    root = Path(root).resolve()
    parameters = parameters or {}
    check(name, root, parameters)
    out_dir = Path(out_dir) if out_dir else root / "book" / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    source = jupytext.read(root / "notebooks" / CHAPTERS[name].source)
    source.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    plain = out_dir / f"{name}.source.ipynb"
    jupytext.write(source, plain)
    running = out_dir / f"{name}.running.ipynb"
    # Only the kernel gets these variables: this process's environment is left as it was.
    kernel_env = {"BADMINIMA_RESULTS": os.environ.get("BADMINIMA_RESULTS", str(root / "results")),
                  **runtime.KEEP_FREED_MEMORY}
    try:
        with runtime.environment(**kernel_env):
            papermill.execute_notebook(plain, running, parameters=parameters, kernel_name="python3",
                                       cwd=str(root), progress_bar=False, execution_timeout=cell_timeout)
    except Exception:
        os.replace(running, out_dir / f"{name}.failed.ipynb")
        raise
    finally:
        plain.unlink()
    final = out_dir / f"{name}.ipynb"
    os.replace(running, final)
    return final


def execute_all(root: Path, scale: str, names: list[str] | None = None, cell_timeout: int | None = None,
                parameters: dict[str, Any] | None = None) -> dict[str, float]:
    """Execute chapters (default: all) with the same parameters, and at `scale` those that take a scale; returns
    each chapter's wall time in seconds. Every name and parameter is checked before the first chapter starts."""
    names = names or list(CHAPTERS)
    for name in names:
        check_choice("chapter", name, CHAPTERS)
    given = {name: {**({"scale": scale} if "scale" in parameters_of(name, root) else {}), **(parameters or {})}
             for name in names}
    for name in names:
        check(name, root, given[name])
    times = {}
    for name in names:
        start = time.time()
        execute(name, root, given[name], cell_timeout=cell_timeout)
        times[name] = time.time() - start
        print(f"executed {name} in {times[name]:.0f} s with {given[name]}", flush=True)
    return times


def build(root: Path) -> Path:
    """Build the HTML book from the executed notebooks (jupyter-book's own execution is off)."""
    root = Path(root).resolve()
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jupyter_book), "build", str(root), "--quiet"], check=True)
    return root / "_build" / "html" / "index.html"
