"""The pieces the book's pages are made of: the table of contents, CSV downloads, coloured verdicts, the execution
record and its commands, wrapped figure panels, the offline animation, and the store's journal behind the progress
bar."""
import base64
import os
import re
import shutil
import time
from pathlib import Path

import matplotlib
import jupytext
import nbformat
import pandas as pd
import pytest

matplotlib.use("Agg")

from badminima.book import chapters, progress, show, summary  # noqa: E402
from badminima.book.cli import parse_value  # noqa: E402
from badminima.core import plots  # noqa: E402
from badminima.core.journal import JOURNAL  # noqa: E402
from badminima.core.store import NotStored, Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_a_csv_link_carries_the_table_itself():
    frame = pd.DataFrame({"model": ["vgg16", "resnet18"], "test acc %": [61.5, 50.25]})
    link = show.csv_link(frame, "runs")
    data = re.search(r'href="data:text/csv;base64,([^"]+)"', link).group(1)
    assert base64.b64decode(data).decode() == frame.to_csv(index=False) and 'download="runs.csv"' in link
    indexed = frame.set_index("model")
    assert base64.b64decode(re.search(r"base64,([^\"]+)", show.csv_link(indexed)).group(1)).decode().startswith(
        "model,test acc %")


def test_verdicts_are_coloured_linked_to_their_chapter_with_the_test_folded():
    table = pd.DataFrame({"chapter": ["paper_a_training", "paper_b_widths"], "claim": ["vanilla fits", "gap > 0"],
                          "paper's number": ["100%", "+5"], "ours": ["98% <capped>", "+1"],
                          "effect (95% CI)": ["", "1 (95% CI -0.5 to 2.5); n = 5"],
                          "verdict": ["holds", "not tested"], "test": ["paired t, p = 0.01", "2 s.e."]})
    page = show.verdict_rows(table)
    assert page.count("<tr>") == 3 and '<a href="paper_a_training.html#does-it-reproduce">vanilla fits</a>' in page
    assert show.COLOURS["holds"] in page and show.COLOURS["not tested"] in page
    assert "<small>effect 1 (95% CI -0.5 to 2.5); n = 5</small>" in page
    assert "<details><summary>the test</summary>paired t, p = 0.01</details>" in page
    assert "98% &lt;capped&gt;" in page, "values are escaped"


def test_the_rerun_commands_give_back_the_parameters():
    overrides = {"seeds": [0, 1], "lr": 0.05, "dataset": "mnist", "models": None,
                 "per_model": {"densenet40": {"width": 0.5}}}
    given = {"scale": "cpu", "overrides": overrides, "executor": "ray"}
    cli, _, papermill = chapters.rerun_commands("paper_a_training", given).splitlines()
    assert cli.startswith("python -m badminima chapter paper_a_training --scale cpu ")
    parsed = {k: parse_value(v) for k, v in re.findall(r'-p (\w+) "([^"]*)"', cli)}
    assert parsed == {"executor": "ray", **overrides}
    assert papermill.startswith("papermill ") and "-p scale cpu" in papermill and "-p executor ray" in papermill
    (injected,) = re.findall(r'-y "overrides: ([^"]*)"', papermill)
    assert parse_value(injected) == overrides


def test_the_execution_page_reads_each_chapters_record(tmp_path):
    for name, scale, seconds in (("paper_a_sketch", "cpu", 60.0), ("reproduce", None, 5.0)):
        nb = nbformat.v4.new_notebook()
        nb.metadata["badminima"] = {"scale": scale, "seconds": seconds, "runs": {"trained": 3, "loaded": 1},
                                    "executed": "2026-11-29 03:00 UTC", "machine": "vm", "commit": "abc"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    table = summary.execution_table(tmp_path)
    assert list(table["chapter"]) == ["paper_a_sketch", "reproduce"] and list(table["results trained"]) == [3, 3]
    assert table["share of the build %"].tolist() == [92.3, 7.7]   # 60 s and 5 s of 65
    line = summary.built_with(table)
    assert "scale `cpu` on vm" in line and "nan" not in line and "6 results were trained and 2 loaded" in line
    counts = summary.verdict_counts(pd.DataFrame({"Paper": ["A", "A", "A", "B"],
                                                  "verdict": ["holds", "does not hold", "not tested", "holds"]}))
    assert list(counts.columns) == ["holds", "does not hold", "inconclusive", "not tested"]
    assert counts.loc["Paper A"].tolist() == [1, 1, 0, 1] and counts.loc["Paper B"].tolist() == [1, 0, 0, 0]


def test_the_results_digest_covers_what_the_chapters_read_and_is_compared_with_the_published_one(tmp_path):
    store, chapters_dir = Store(tmp_path / "results"), tmp_path / "book" / "chapters"
    chapters_dir.mkdir(parents=True)
    for value in (1, 2, 3):
        store.load_or_run("demo", {"a": value}, lambda _, v=value: ({"acc": v}, {}))
    read = lambda *values: [f"demo/{store.key({'a': v})}" for v in values]

    def executed(results: list[str]) -> None:
        nb = nbformat.v4.new_notebook()
        nb.metadata["badminima"] = {"scale": "cpu", "seconds": 1.0, "runs": {"trained": 0, "loaded": 2},
                                    "results": results, "executed": "2026-12-06 10:00 UTC", "machine": "vm",
                                    "commit": "abc"}
        nbformat.write(nb, chapters_dir / "paper_a_sketch.ipynb")

    executed(read(1, 2))
    digest, count = summary.results_digest(chapters_dir, store.root)
    assert count == 2 and "no build at scale cpu has been published" in summary.digest_line(chapters_dir, store.root)
    summary.publish(chapters_dir, store.root)
    assert "the same, so every number here is the published one" in summary.digest_line(chapters_dir, store.root)
    executed(read(1, 3))   # a build that shows another result
    assert summary.results_digest(chapters_dir, store.root)[0] != digest
    assert "they differ" in summary.digest_line(chapters_dir, store.root)
    executed(read(1, 4))
    with pytest.raises(NotStored, match="is not in the store"):
        summary.results_digest(chapters_dir, store.root)


def test_panels_wrap_two_to_a_row():
    fig, axes = plots.panel_grid(3, 4.0, 3.0)
    assert len(axes) == 3 and len(fig.axes) == 4 and not fig.axes[3].axison
    assert tuple(fig.get_size_inches()) == (8.0, 6.0)


def test_the_animation_keeps_its_controls_without_a_cdn():
    frames = [[[{"logit_fn": lambda x: x[:, 0] - t, "x": __import__("torch").randn(8, 2),
                 "y": __import__("torch").tensor([0, 1] * 4)}]] for t in (0.0, 1.0)]
    page = plots.animation_html(plots.boundary_animation(frames, ["a", "b"]))
    assert "http" not in re.sub(r'xmlns="[^"]+"', "", page) and 'class="fa fa-play' in page


def test_the_store_journals_what_it_trained_and_loaded(tmp_path, monkeypatch):
    journal = tmp_path / "journal"
    monkeypatch.setenv(JOURNAL, str(journal))
    store = Store(tmp_path / "results")
    store.load_or_run("toy", {"a": 1}, lambda work: ({"m": 1}, {}))
    store.load_or_run("toy", {"a": 1}, lambda work: pytest.fail("stored: not run again"))
    store.load_or_run("toy", {"a": 2}, lambda work: ({"m": 2}, {}))
    assert progress.counts(journal) == {"trained": 2, "loaded": 0}
    store.load("toy", {"a": 2})
    other = Store(tmp_path / "results")
    other.load_or_run("toy", {"a": 1}, lambda work: pytest.fail("stored"))
    journal.unlink()
    other.load_or_run("toy", {"a": 1}, lambda work: pytest.fail("stored"))
    assert progress.counts(journal) == {"trained": 0, "loaded": 1}


def test_the_progress_bar_follows_the_journal_another_process_writes(tmp_path):
    journal = tmp_path / "journal"
    with progress.Bar(journal, "chapter", total=3) as bar:
        journal.write_text("trained image k1\nloaded image k2\nloaded image k1\ntrained ima")   # a line half written
        for _ in range(50):
            if bar.bar.n == 2:
                break
            time.sleep(0.1)
        assert (bar.bar.n, bar.bar.postfix) == (2, "trained=1")
        assert bar.thread.is_alive()


def test_the_committed_toc_is_the_one_the_chapter_record_writes(tmp_path):
    assert chapters.write_toc(tmp_path).read_text() == (Path(__file__).parents[1] / "_toc.yml").read_text()
    toc = chapters.toc()
    pages = [toc["root"], *(c["file"] for part in toc["parts"] for c in part["chapters"])]
    assert sorted(pages) == sorted(f"book/chapters/{name}" for name in chapters.CHAPTERS), "every chapter, once"


def test_make_book_ends_with_the_index_and_the_verdict_counts(tmp_path, monkeypatch, capsys):
    from badminima.book import cli

    monkeypatch.setattr(chapters, "execute_all", lambda root, scale, executor=None: {})
    monkeypatch.setattr(chapters, "build", lambda root: root / "_build" / "html" / "index.html")
    (tmp_path / summary.CHAPTERS_DIR).mkdir(parents=True)
    pd.DataFrame({"verdict": ["holds", "holds", "inconclusive"]}).to_csv(
        tmp_path / summary.CHAPTERS_DIR / summary.VERDICTS, index=False)
    assert cli.main(["book", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"book built: {tmp_path / '_build' / 'html' / 'index.html'}" in out
    assert "3 claims: 2 holds, 0 does not hold, 1 inconclusive, 0 not tested" in out


def test_a_row_of_boundaries_wraps():
    import torch

    panel = {"logit_fn": lambda x: x[:, 0], "x": torch.randn(8, 2), "y": torch.tensor([0, 1] * 4)}
    fig = plots.boundary_grid([[panel] * 4], size=2.0, per_row=2)
    assert tuple(fig.get_size_inches()) == (4.0, 4.0) and len(fig.axes) == 4


def test_the_book_executes_chapters_without_making_widgets(tmp_path, monkeypatch):
    """nbclient intermittently hangs on a cell that calls ipywidgets.interact (show.widgets_shown): the chapters make
    their widgets only in a notebook a reader runs, and the book's execution tells its kernels so."""
    seen = {}

    def papermill(source, running, **kwargs):   # the kernel's environment, instead of a kernel
        seen["flag"] = os.environ.get(show.BOOK_EXECUTION)
        shutil.copy(source, running)

    monkeypatch.setattr(chapters, "_papermill", papermill)
    chapters.execute("status", ROOT, out_dir=tmp_path)
    assert seen["flag"] == "1" and os.environ.get(show.BOOK_EXECUTION) is None
    monkeypatch.setenv(show.BOOK_EXECUTION, "1")
    assert not show.widgets_shown()
    monkeypatch.delenv(show.BOOK_EXECUTION)
    assert show.widgets_shown()
    for source in sorted((ROOT / "notebooks").glob("*.md")):
        for cell in jupytext.read(source).cells:
            if "widgets.interact(" in cell.source:   # only inside the guard, indented beneath it
                assert re.search(r"^if show\.widgets_shown\(\):.*\n    widgets\.interact\(", cell.source, re.M), source.name
                assert not re.search(r"^widgets\.interact\(", cell.source, re.M), source.name
