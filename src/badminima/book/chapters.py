"""The book's chapters: jupytext sources in notebooks/, executed by papermill into book/chapters/, then built."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import papermill

from badminima.core import runtime
from badminima.core.config import SCALES, check_choice

# chapter name -> jupytext source under notebooks/; each lands as book/chapters/<name>.ipynb (see _toc.yml).
# Chapters execute in this order; "reproduce" reads every other chapter's stored results, so it stays last.
CHAPTERS = {
    "paper_a_sketch": "paper_a_sketch.md",
    "paper_a_training": "paper_a_training.md",
    "paper_a_replication": "paper_a_replication.md",
    "paper_a_heuristics": "paper_a_heuristics.md",
    "paper_a_complexity": "paper_a_complexity.md",
    "paper_b_widths": "paper_b_widths.md",
    "paper_b_boundaries": "paper_b_boundaries.md",
    "paper_b_long": "paper_b_long.md",
    "reproduce": "reproduce.md",
}


def execute(name: str, root: Path, parameters: dict | None = None, out_dir: Path | None = None,
            cell_timeout: int | None = None) -> Path:
    """Execute one chapter with papermill. The executed notebook replaces the previous one only on success; a
    failed execution is kept beside it as <name>.failed.ipynb. `cell_timeout` (seconds) fails a cell that runs
    longer, so a hung kernel cannot stall the tests."""
    check_choice("chapter", name, CHAPTERS)
    root = Path(root).resolve()
    out_dir = Path(out_dir) if out_dir else root / "book" / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    source = jupytext.read(root / "notebooks" / CHAPTERS[name])
    source.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    plain = out_dir / f"{name}.source.ipynb"
    jupytext.write(source, plain)
    running = out_dir / f"{name}.running.ipynb"
    # Only the kernel gets these variables: this process's environment is left as it was.
    kernel_env = {"BADMINIMA_RESULTS": os.environ.get("BADMINIMA_RESULTS", str(root / "results")),
                  **runtime.KEEP_FREED_MEMORY}
    try:
        with runtime.environment(**kernel_env):
            papermill.execute_notebook(plain, running, parameters=parameters or {}, kernel_name="python3",
                                       cwd=str(root), progress_bar=False, execution_timeout=cell_timeout)
    except Exception:
        os.replace(running, out_dir / f"{name}.failed.ipynb")
        raise
    finally:
        plain.unlink()
    final = out_dir / f"{name}.ipynb"
    os.replace(running, final)
    return final


def execute_all(root: Path, scale: str, names: list[str] | None = None,
                cell_timeout: int | None = None) -> dict[str, float]:
    """Execute chapters at a scale; returns each chapter's wall time in seconds."""
    check_choice("scale", scale, SCALES)
    times = {}
    for name in names or list(CHAPTERS):
        start = time.time()
        execute(name, root, {"scale": scale}, cell_timeout=cell_timeout)
        times[name] = time.time() - start
        print(f"executed {name} at scale {scale} in {times[name]:.0f} s", flush=True)
    return times


def build(root: Path) -> Path:
    """Build the HTML book from the executed notebooks (jupyter-book's own execution is off)."""
    root = Path(root).resolve()
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jupyter_book), "build", str(root), "--quiet"], check=True)
    return root / "_build" / "html" / "index.html"
