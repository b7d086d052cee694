"""The chapters execute with papermill at smoke scale and the book builds from what they produced."""
import re

import nbformat
import pytest

from badminima.book import chapters
from badminima.book import summary
from badminima.core.store import Store
from badminima.paper_a import claims, sketch


def test_every_chapter_executes(smoke_book):
    for name in chapters.CHAPTERS:
        assert (smoke_book / "book" / "chapters" / f"{name}.ipynb").exists()
    text = (smoke_book / "book" / "chapters" / "paper_a_sketch.ipynb").read_text()
    assert '"scale": "smoke"' in text or "scale = \\\"smoke\\\"" in text
    assert "image/png" in text, "the chapter drew its figures"


def test_each_executed_chapter_records_how_it_was_made(smoke_book):
    nb = nbformat.read(smoke_book / "book" / "chapters" / "paper_a_training.ipynb", as_version=4)
    meta = nb.metadata["badminima"]
    assert meta["scale"] == "smoke" and meta["seconds"] > 0 and meta["parameters"]["scale"] == "smoke"
    # The training chapter trained its runs: the journal its kernel wrote counts them (each result once).
    assert meta["runs"]["trained"] > 0 and meta["runs"]["trained"] + meta["runs"]["loaded"] > 4
    # And names each result, for the build's results digest.
    assert len(meta["results"]) == meta["runs"]["trained"] + meta["runs"]["loaded"]
    assert summary.digest_line(smoke_book / "book" / "chapters", smoke_book / "results").startswith("Results digest")
    box = next(c for c in nb.cells if "execution-box" in c.metadata.get("tags", []))
    assert "python -m badminima chapter paper_a_training --scale smoke" in box.source
    assert f"in {meta['seconds']:.0f} s" in box.source
    hidden = [c for c in nb.cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    assert len(hidden) == 2 and all("remove-cell" in c.metadata["tags"] for c in hidden)
    # The Execution page's table is read from these records.
    table = summary.execution_table(smoke_book / "book" / "chapters")
    assert "paper_a_training" in set(table["chapter"]) and (table["scale"].dropna() == "smoke").all()


def test_the_expected_time_reads_the_last_execution_else_the_measured_cpu_time(smoke_book):
    training = nbformat.read(smoke_book / "book" / "chapters" / "paper_a_training.ipynb", as_version=4)
    seconds = training.metadata["badminima"]["seconds"]
    line = chapters.expected_time(smoke_book, {"paper_a_training": {"scale": "smoke"}})
    assert line.startswith(f"expected: about {seconds / 60:.0f} min (1 chapter(s) as their last execution took")
    cpu = {"paper_a_training": {"scale": "cpu"}, "paper_b_widths": {"scale": "cpu"}}
    minutes = sum(chapters.CHAPTERS[n].cpu_seconds for n in cpu) / 60
    assert chapters.expected_time(smoke_book, cpu).startswith(f"expected: about {minutes:.0f} min (2 as long as")
    assert chapters.expected_time(smoke_book, {"paper_a_training": {"scale": "gpu"}}).endswith(
        "no estimate for paper_a_training at this scale")


def test_book_builds_with_the_figure(smoke_book, built_book):
    assert (built_book / "index.html").exists()
    page = (smoke_book / "_build" / "html" / "book" / "chapters" / "paper_a_sketch.html").read_text()
    assert re.search(r'<img[^>]+src="[^"]+\.png"', page), "the figure is in the HTML"
    # The verdict table shows what the claims module computes from the chapter's stored runs, row by row.
    verdicts = claims.sketch_verdicts(sketch.config_for("smoke"), Store(smoke_book / "results"))
    shown = re.findall(r">(holds|does not hold|inconclusive|not tested)</span>", page)
    assert shown == [v.verdict for v in verdicts] and verdicts


def test_a_bad_parameter_fails_without_replacing_the_good_notebook(smoke_book):
    good = smoke_book / "book" / "chapters" / "paper_a_sketch.ipynb"
    before = good.read_text()
    with pytest.raises(Exception, match="scale='tiny' is not allowed"):
        chapters.execute("paper_a_sketch", smoke_book, {"scale": "tiny"})
    assert good.read_text() == before
    assert not (good.parent / "paper_a_sketch.failed.ipynb").exists(), "rejected before papermill started"


def test_reproduce_page_gathers_every_chapters_verdicts(built_book):
    text = (built_book / "book" / "chapters" / "reproduce.html").read_text()
    for chapter in ("paper_a_sketch", "paper_a_training", "paper_a_heuristics", "paper_a_complexity"):
        assert chapter in text
    assert "Every chapter&#39;s results are stored." in text or "Every chapter's results are stored." in text
