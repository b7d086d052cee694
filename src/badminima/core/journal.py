"""The book's progress journal: with $BADMINIMA_JOURNAL set (the book's executor sets it for each chapter's kernel),
the store appends one line per result it loads or trains, which is how a chapter's progress bar moves and how the
Execution page counts what each chapter trained."""
from __future__ import annotations

import os
from pathlib import Path

from badminima.core.config import ParameterError

JOURNAL = "BADMINIMA_JOURNAL"


def check() -> None:
    """Raise ParameterError unless $BADMINIMA_JOURNAL is unset, empty or a file that can be appended to: checked
    before any work, so a bad value never fails a run after its result was stored."""
    journal = os.environ.get(JOURNAL)
    if not journal:
        return
    path = Path(journal)
    if path.is_dir():
        problem = "is a folder"
    elif not path.parent.is_dir():
        problem = "is not in an existing folder"
    elif not os.access(path if path.exists() else path.parent, os.W_OK):
        problem = "cannot be written"
    else:
        return
    raise ParameterError(f"{JOURNAL}={journal!r} {problem}; allowed: a file in an existing folder this process can "
                         "write, or unset")


def record(event: str, kind: str, path: Path) -> None:
    """With $BADMINIMA_JOURNAL set (the book's executor sets it for a chapter's kernel), one line per result
    loaded or trained, so the executor can show progress and count what a chapter trained. Lines this short are
    appended whole even when worker processes write at once."""
    journal = os.environ.get(JOURNAL)
    if journal:
        with open(journal, "a") as f:
            f.write(f"{event} {kind} {path.name}\n")
