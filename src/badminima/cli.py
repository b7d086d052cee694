"""The command line over the library: `python -m badminima --help`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from badminima import chapters
from badminima.config import SCALES, ParameterError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="badminima", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    book = sub.add_parser("book", help="execute every chapter at a scale, then build the HTML book")
    book.add_argument("--scale", default="cpu", choices=SCALES)
    book.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: here)")
    run = sub.add_parser("chapter", help="execute chapters with papermill (no book build)")
    run.add_argument("names", nargs="*", help=f"chapters (default: all): {', '.join(chapters.CHAPTERS)}")
    run.add_argument("--scale", default="cpu", choices=SCALES)
    run.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: here)")
    args = parser.parse_args(argv)
    try:
        chapters.execute_all(args.root, args.scale, getattr(args, "names", None) or None)
    except ParameterError as err:
        print(f"badminima: {err}", file=sys.stderr)
        return 2
    if args.command == "book":
        index = chapters.build(args.root)
        print(f"book built: {index}")
    return 0
