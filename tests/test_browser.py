"""The smoke-scale book opened page by page in headless Chromium (book/browser.py): what a reader would see."""
import os
from pathlib import Path

import pytest

from badminima.book import browser

WHY_NOT = browser.missing_browser()


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no browser: {WHY_NOT}")
def test_every_page_loads_offline_without_errors_raw_latex_or_dead_links(built_book):
    shots = Path(os.environ.get("BADMINIMA_SCREENSHOTS", built_book.parent / "screenshots"))
    reports = browser.check_book(built_book, shots)
    names = {r.page for r in reports}
    assert {"book/chapters/index.html", "book/chapters/paper_a_training.html", "book/chapters/reproduce.html"} <= names
    assert [f"{r.page}: {p}" for r in reports for p in r.problems] == []
    assert sum(r.animations for r in reports) >= 1, "the boundaries chapter's animation has its controls"
    assert len(list(shots.glob("*.png"))) == len(reports) - 1, "one screenshot a page, but the top redirect"


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no browser: {WHY_NOT}")
def test_the_check_sees_what_it_is_meant_to_see(tmp_path):
    """A page with each fault the check looks for is reported with each of them."""
    (tmp_path / "ok.html").write_text('<html><body><main><p id="here">fine</p></main></body></html>')
    (tmp_path / "bad.html").write_text(
        '<html><body><main><p>\\(t \\le 10\\)</p><p>````{admonition} Executed</p><img src="missing.png">'
        '<div class="output traceback">Traceback (most recent call last)</div>'
        '<a href="ok.html#here">fine</a><a href="ok.html#gone">gone</a><a href="nowhere.html">x</a>'
        '<script src="https://cdn.example.org/x.js"></script></main></body></html>')
    reports = {r.page: r.problems for r in browser.check_book(tmp_path)}
    assert reports["ok.html"] == []
    bad = " | ".join(reports["bad.html"])
    for expected in ("outside 127.0.0.1: https://cdn.example.org/x.js", "image does not load", "traceback",
                     "raw LaTeX", "raw MyST", "missing page: http://127.0.0.1", "missing section: http://127.0.0.1"):
        assert expected in bad, expected
    assert "ok.html#here" not in bad
