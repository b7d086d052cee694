"""The smoke-scale book, executed once for every test module that reads it."""
import shutil
from pathlib import Path

import pytest

from badminima.book import chapters

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    for item in ("_config.yml", "_toc.yml", "_static", "book", "notebooks"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, root / item, ignore=shutil.ignore_patterns("chapters"))
        elif src.exists():
            shutil.copy(src, root / item)
    mp = pytest.MonkeyPatch()
    mp.setenv("BADMINIMA_RESULTS", str(root / "results"))
    chapters.execute_all(root, "smoke", cell_timeout=600)
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def built_book(smoke_book):
    """The smoke book's HTML, built once."""
    chapters.build(smoke_book)
    return smoke_book / "_build" / "html"
