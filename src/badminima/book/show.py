"""How the book's pages show results: every table with a link that downloads it as CSV, and verdicts coloured, each
claim linked to the chapter section that tests it, with its test folded away one click below."""
from __future__ import annotations

import base64
import html
import os
import re

import pandas as pd
from pandas.io.formats.style import Styler

# Set in a chapter's kernel when the book executes it (chapters.execute).
BOOK_EXECUTION = "BADMINIMA_BOOK_EXECUTION"


def widgets_shown() -> bool:
    """Whether a chapter's ipywidgets are made: in a notebook a reader runs, yes; when the book executes it, no. The
    book's pages are static and drop the widget cells' output (each has a static stand-in), and nbclient, which
    papermill executes through, intermittently hangs on a cell that calls ipywidgets.interact: the kernel runs the
    cell and its reply never reaches the client (jupyter/nbclient#312, nteract/papermill#723; twice here, in fresh
    cpu builds at paper_a_sketch's widget cell, with In[8] holding the cell and papermill still waiting)."""
    return os.environ.get(BOOK_EXECUTION) != "1"


COLOURS = {"holds": "#1a7f37", "does not hold": "#cf222e", "inconclusive": "#9a6700", "not tested": "#6e7781"}


def csv_link(frame: pd.DataFrame, name: str = "table") -> str:
    """An HTML link that downloads `frame` as a CSV file. The file travels inside the link (a data URI), so it
    works in the static book, offline, with no file beside the page."""
    index = not isinstance(frame.index, pd.RangeIndex)
    data = base64.b64encode(frame.to_csv(index=index).encode()).decode()
    return (f'<p class="csv-download"><a download="{html.escape(name)}.csv" '
            f'href="data:text/csv;base64,{data}">Download this table as CSV</a></p>')


def _name(frame: pd.DataFrame) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", "-".join(map(str, frame.columns[:3])).lower()).strip("-")
    return words or "table"


def enable_csv_downloads() -> None:
    """In the running notebook, show every DataFrame and Styler with its CSV download link beneath it."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(pd.DataFrame, lambda df: df._repr_html_() + csv_link(df, _name(df)))
    formatter.for_type(Styler,
                       lambda st: st.to_html() + csv_link(st.data, _name(st.data)))


def verdict_badge(verdict: str) -> str:
    colour = COLOURS.get(verdict, "#57606a")
    return (f'<span style="background:{colour};color:white;border-radius:0.6em;padding:0.1em 0.6em;'
            f'white-space:nowrap;font-weight:600">{html.escape(verdict)}</span>')


def verdict_rows(table: pd.DataFrame) -> str:
    """Claims as an HTML table: the claim (linked to the section of its chapter that tests it, when the table has
    a `chapter` column), the paper's number and ours side by side, the verdict as a coloured badge, and the test
    behind it in a folded box."""
    number = "paper's number" if "paper's number" in table.columns else "paper"
    rows = []
    for _, r in table.iterrows():
        claim = html.escape(str(r["claim"]))
        if "chapter" in table.columns:
            claim = f'<a href="{r["chapter"]}.html#does-it-reproduce">{claim}</a>'
        effect = r.get("effect (95% CI)")
        effect = f"<br><small>effect {html.escape(str(effect))}</small>" if isinstance(effect, str) and effect else ""
        rows.append(
            f"<tr><td>{claim}<details><summary>the test</summary>{html.escape(str(r['test']))}</details></td>"
            f"<td>{html.escape(str(r[number]))}</td><td>{html.escape(str(r['ours']))}{effect}</td>"
            f"<td>{verdict_badge(str(r['verdict']))}</td></tr>")
    head = "<tr><th>claim</th><th>the paper</th><th>ours</th><th>verdict</th></tr>"
    return (f'<table class="verdicts" style="width:100%;table-layout:auto">{head}{"".join(rows)}</table>'
            + csv_link(table, "verdicts"))
