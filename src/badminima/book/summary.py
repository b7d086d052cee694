"""The "Does it reproduce?" page: every chapter's verdicts, from the same function the chapter shows them with, called
with the configuration the chapter was executed with (rebuilt from the parameters papermill recorded in the executed
notebook), through a store that reads and never trains."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from badminima.book import chapters
from badminima.core import stats
from badminima.core.store import NotStored, ReadOnlyStore, Store

CHAPTERS_DIR = Path("book") / "chapters"   # where chapters.execute writes the executed notebooks
VERDICTS = "verdicts.csv"                   # gather's table, kept beside them
# Beside CHAPTERS_DIR: the results digest of the build whose numbers the book publishes, per scale (committed), that a
# rebuild compares its own with.
PUBLISHED = "published.json"


# The chapters that show verdicts, in the book's order. Each one's configuration is built by the same function that
# checked its parameters before it was executed.
CHAPTERS = {name: chapter for name, chapter in chapters.CHAPTERS.items() if chapter.verdicts is not None}


def executed_parameters(notebook: Path) -> dict[str, Any]:
    """The parameters an executed chapter ran with: its parameters cell's defaults, replaced by those papermill
    injected (recorded in the notebook's metadata)."""
    nb = nbformat.read(notebook, as_version=4)
    return {**chapters.declared_parameters(nb), **nb.metadata.get("papermill", {}).get("parameters", {})}


def chapter_config(name: str, chapters_dir: str | Path = CHAPTERS_DIR) -> tuple[dict[str, Any], Any]:
    """The parameters chapter `name` was executed with and the configuration it built from them. Raises
    FileNotFoundError when the chapter has not been executed into `chapters_dir`."""
    notebook = Path(chapters_dir) / f"{name}.ipynb"
    if not notebook.exists():
        raise FileNotFoundError(f"not executed: there is no {notebook}")
    parameters = executed_parameters(notebook)
    return parameters, chapters.CHAPTERS[name].config(**parameters)


def _set(parameters: dict[str, Any]) -> str:
    """The parameters given a value (the others keep the scale's defaults), as `name=value` pairs."""
    chosen = [f"{k}={v!r}" for k, v in chapters.flat(parameters).items() if v is not None and k != "scale"]
    return ", ".join(chosen) or "the scale's defaults"


def gather(chapters_dir: str | Path = CHAPTERS_DIR, root: str | Path | None = None
           ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Every executed chapter's verdicts from the stored results: one row per claim (paper, chapter, scale, claim,
    paper's number, ours, verdict, test); one row per chapter with the scale and parameters its rows come from
    and how many statistical tests they hold; and, for each chapter with no rows, why."""
    store = ReadOnlyStore(root)
    rows, sources, absent = [], [], {}
    for name, chapter in CHAPTERS.items():
        try:
            parameters, cfg = chapter_config(name, chapters_dir)
            verdicts = chapter.verdicts(cfg, store)
        except (FileNotFoundError, NotStored) as missing:
            absent[name] = str(missing)
            continue
        scale = parameters.get("scale")
        rows.append(stats.verdict_table(verdicts).assign(Paper=chapter.part, chapter=name, scale=scale))
        sources.append({"chapter": name, "scale": scale, "parameters": _set(parameters), "claims": len(verdicts),
                        "tests": stats.tests_in(verdicts)})
    columns = ["Paper", "chapter", "scale", *stats.COLUMNS]
    table = pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)
    table = table.rename(columns={"paper": "paper's number"})
    if Path(chapters_dir).is_dir():
        table.to_csv(Path(chapters_dir) / VERDICTS, index=False)
    sources = pd.DataFrame(sources, columns=["chapter", "scale", "parameters", "claims", "tests"])
    return table, sources, absent


def saved_verdicts(chapters_dir: str | Path = CHAPTERS_DIR) -> pd.DataFrame:
    """The verdict table the last `gather` (the "Does it reproduce?" page) wrote beside the executed chapters,
    so the landing page and the command line need not recompute it."""
    path = Path(chapters_dir) / VERDICTS
    if not path.exists():
        raise FileNotFoundError(f"no {path}: execute the 'reproduce' chapter first")
    return pd.read_csv(path)


def execution_table(chapters_dir: str | Path = CHAPTERS_DIR) -> pd.DataFrame:
    """One row per executed chapter, from what its execution recorded (chapters.record): scale, wall time and its
    share of all the chapters' time, results trained and loaded, when, where and from which commit."""
    rows = []
    for name in chapters.CHAPTERS:
        notebook = Path(chapters_dir) / f"{name}.ipynb"
        meta = nbformat.read(notebook, as_version=4).metadata.get("badminima") if notebook.exists() else None
        if meta:
            rows.append({"chapter": name, "scale": meta["scale"], "wall time (s)": round(meta["seconds"]),
                         "results trained": meta["runs"]["trained"], "results loaded": meta["runs"]["loaded"],
                         "executed": meta["executed"], "machine": meta["machine"], "commit": meta["commit"]})
    table = pd.DataFrame(rows, columns=["chapter", "scale", "wall time (s)", "results trained", "results loaded",
                                        "executed", "machine", "commit"])
    total = table["wall time (s)"].sum()
    table.insert(3, "share of the build %", (100 * table["wall time (s)"] / total).round(1) if total else 0.0)
    return table


def built_with(executions: pd.DataFrame) -> str:
    """One sentence: the scale(s), machine(s), dates and commit(s) the executed chapters came from."""
    if executions.empty:
        return "No chapter has been executed yet."
    join = lambda column: ", ".join(f"`{v}`" if column in ("scale", "commit") else str(v)
                                    for v in dict.fromkeys(executions[column].dropna()))
    dates = sorted(executions["executed"])
    when = dates[0] if dates[0] == dates[-1] else f"between {dates[0]} and {dates[-1]}"
    return (f"Built at scale {join('scale')} on {join('machine')}, executed {when} from commit {join('commit')}: "
            f"{executions['wall time (s)'].sum() / 60:.0f} minutes of execution in all, in which "
            f"{executions['results trained'].sum()} results were trained and {executions['results loaded'].sum()} "
            "loaded from the store (trained by earlier executions).")


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per paper, how many claims reached each of the four verdicts ("not tested" is never counted as "does not
    hold")."""
    counts = table.groupby("Paper")["verdict"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=list(stats.VERDICTS), fill_value=0)
    return counts.rename_axis(index=None, columns=None).rename(index=lambda p: f"Paper {p}")


def count_line(table: pd.DataFrame, sources: pd.DataFrame | None = None) -> str:
    """One sentence: how many claims, from how many chapters, reached each verdict (and, given gather's sources,
    how many statistical tests they hold)."""
    counts = stats.counts(table["verdict"])
    chapters_ = f" from {table['chapter'].nunique()} chapter(s)" if "chapter" in table.columns else ""
    tests = f"; {sources['tests'].sum()} statistical tests in all" if sources is not None else ""
    return f"{len(table)} claims{chapters_}: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + f"{tests}."


def headline_runs(chapters_dir: str | Path = CHAPTERS_DIR, root: str | Path | None = None
                  ) -> tuple[pd.DataFrame, str]:
    """Paper A's main grid as the training chapter ran it (one row per run), read from the store: the seeds whose
    phase 1 met Algorithm 1's stopping rule, and the line that says what that left out."""
    from badminima.paper_a import experiments as paper_a

    _, cfg = chapter_config("paper_a_training", chapters_dir)
    return paper_a.phase1_met(paper_a.runs_table(paper_a.main_grid(cfg), ReadOnlyStore(root)))


def headline_gaps(chapters_dir: str | Path = CHAPTERS_DIR, root: str | Path | None = None
                  ) -> tuple[pd.DataFrame, dict[str, str]]:
    """Paper B's Exp 1 - Exp 2 gaps per data set and width as the widths chapter ran them, and the data sets'
    names."""
    from badminima.paper_b import datasets as paper_b_datasets
    from badminima.paper_b import experiments as paper_b

    _, cfg = chapter_config("paper_b_widths", chapters_dir)
    return paper_b.gaps(paper_b.sweep(cfg, ReadOnlyStore(root))), paper_b_datasets.names_of(cfg)


def results_digest(chapters_dir: str | Path = CHAPTERS_DIR, root: str | Path | None = None) -> tuple[str, int]:
    """One SHA-256 over every stored result the executed chapters read (each chapter's record names them): each
    result's kind/key and the checksums of its configuration, metrics and weights, in sorted order; and how many.
    Two builds whose every shown number agrees bit for bit have the same digest."""
    names = set()
    for name in chapters.CHAPTERS:
        notebook = Path(chapters_dir) / f"{name}.ipynb"
        if notebook.exists():
            names.update(nbformat.read(notebook, as_version=4).metadata.get("badminima", {}).get("results", []))
    digest, store = hashlib.sha256(), Store(root)
    for name in sorted(names):
        sums = store.checksums(*name.split("/"))
        digest.update(f"{name} {' '.join(sums[f] for f in sorted(sums))}\n".encode())
    return digest.hexdigest(), len(names)


def _published(chapters_dir: str | Path) -> tuple[Path, str, dict]:
    """Where the published digests are, the scale(s) the executed chapters ran at, and every published entry."""
    path = Path(chapters_dir).parent / PUBLISHED
    scale = ", ".join(dict.fromkeys(execution_table(chapters_dir)["scale"].dropna()))
    return path, scale, json.loads(path.read_text()) if path.exists() else {}


def publish(chapters_dir: str | Path = CHAPTERS_DIR, root: str | Path | None = None) -> None:
    """Record this build's results digest as the published one for its scale."""
    path, scale, published = _published(chapters_dir)
    executions = execution_table(chapters_dir)
    digest, count = results_digest(chapters_dir, root)
    join = lambda column: ", ".join(dict.fromkeys(executions[column]))
    published[scale] = {"digest": digest, "results": count, "commit": join("commit"),
                        "executed": max(executions["executed"]), "machine": join("machine")}
    path.write_text(json.dumps(published, indent=1) + "\n")


def digest_line(chapters_dir: str | Path = CHAPTERS_DIR, root: str | Path | None = None) -> str:
    """One sentence: this build's results digest beside the published build's at the same scale, and whether they
    agree (then every number this build shows is the published one, bit for bit)."""
    _, scale, published = _published(chapters_dir)
    digest, count = results_digest(chapters_dir, root)
    ours = f"Results digest `{digest[:16]}` over the {count} stored results this build shows"
    published = published.get(scale)
    if published is None:
        return f"{ours}; no build at scale {scale} has been published to compare it with."
    theirs = (f"the published build's (commit `{published['commit']}`, {published['executed']}, "
              f"{published['results']} results) is `{published['digest'][:16]}`")
    if published["digest"] == digest:
        return f"{ours}; {theirs}: the same, so every number here is the published one, bit for bit."
    return (f"{ours}; {theirs}: they differ, so some number here is not the published one (another commit, other "
            f"parameters, or kernels other than the pinned ones: see each result's manifest).")
