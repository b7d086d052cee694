"""A chapter's progress as its kernel reports it: the journal of the results it trained or loaded (another process
writes it, core/journal.py), read into counts, the list its page shows and a progress bar."""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import nbformat
from tqdm import tqdm


def _read(journal: Path) -> tuple[set, set]:
    """The (kind, key) of the results a chapter's kernel trained, and of those it loaded."""
    trained, loaded = set(), set()
    if journal.exists():
        for line in journal.read_text().splitlines():
            fields = line.split()
            if len(fields) == 3:   # the progress bar may read a line the kernel is still appending
                (trained if fields[0] == "trained" else loaded).add(tuple(fields[1:]))
    return trained, loaded


def counts(journal: Path) -> dict[str, int]:
    """How many distinct results a chapter's kernel trained, and how many more it only loaded."""
    trained, loaded = _read(journal)
    return {"trained": len(trained), "loaded": len(loaded - trained)}


def results(journal: Path) -> list[str]:
    """Every result a chapter's kernel read, trained or loaded, as kind/key, sorted: what its page shows."""
    return sorted(f"{kind}/{key}" for kind, key in set().union(*_read(journal)))


def results_before(notebook: Path, parameters: dict[str, Any]) -> int | None:
    """How many results the chapter's previous execution with the same parameters read: the progress bar's total
    (None when unknown: the bar then counts without one)."""
    if not notebook.exists():
        return None
    meta = nbformat.read(notebook, as_version=4).metadata.get("badminima", {})
    return sum(meta["runs"].values()) if meta.get("parameters") == parameters else None


class Bar:
    """A tqdm bar over the results a chapter's kernel has loaded or trained so far, read from its journal every
    second (the kernel is another process), with the count trained and, once it has a total, the time left."""

    def __init__(self, journal: Path, label: str, total: int | None):
        self.journal, self.stop = journal, threading.Event()
        self.bar = tqdm(total=total, desc=label, unit="result", leave=False, file=sys.stdout)
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(1.0):
            now = counts(self.journal)
            done = now["trained"] + now["loaded"]
            if self.bar.total is not None and done > self.bar.total:
                self.bar.total = done
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(trained=now["trained"], refresh=True)

    def __enter__(self) -> "Bar":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        self.bar.close()
