"""`badminima store list|verify|rm`: see, check and prune the result store."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Iterator

from badminima.core.config import ParameterError
from badminima.core.store import Entry, Store

# The configuration fields `store list` shows, wherever they sit in a configuration's nesting.
MAIN_FIELDS = ("group", "dataset", "model", "width", "widths", "seed", "seeds", "replication", "noise_percent",
               "augment", "lr", "max_epochs")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    store = subparsers.add_parser("store", help="list, verify or remove stored results",
                                  description="See and manage the result store.")
    actions = store.add_subparsers(dest="action", required=True)
    helps = {"list": "every stored result: kind, key, main fields, size, date, complete or partial",
             "verify": "check every stored result's checksums; exit status 1 if any fails",
             "rm": "remove the results selected by --kind and/or --key"}
    for name, text in helps.items():
        p = actions.add_parser(name, help=text, description=text)
        p.add_argument("--results", help="result store folder (default: $BADMINIMA_RESULTS or ./results)")
        if name == "rm":
            p.add_argument("--kind", help="only results of this kind (image, adversarial, widths, ...)")
            p.add_argument("--key", help="only results whose key starts with this")


def run(args: argparse.Namespace) -> int:
    try:
        store = Store(args.results)
        store.check_is_store()
    except ParameterError as err:
        raise err.renamed("--results") if args.results is not None else err
    return {"list": _list, "verify": _verify, "rm": _rm}[args.action](store, args)


def _leaves(config: Any, name: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(config, dict):
        for key, value in config.items():
            yield from _leaves(value, key)
    elif name:
        yield name, config


def _fields(config: dict | None) -> str:
    if config is None:
        return "(no config.json)"
    leaves = sorted((MAIN_FIELDS.index(name), f"{name}={value}") for name, value in _leaves(config)
                    if name in MAIN_FIELDS and value is not None)
    return " ".join(dict.fromkeys(text for _, text in leaves))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _list(store: Store, args: argparse.Namespace) -> int:
    entries = store.entries()
    if not entries:
        print(f"no results under {store.root}")
        return 0
    for e in entries:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.modified))
        print(f"{e.kind:<18} {e.key:<16} {e.status:<8} {_size(e.size):>10}  {date}  {_fields(e.config)}")
    return 0


def _verify(store: Store, args: argparse.Namespace) -> int:
    complete = [e for e in store.entries() if e.status == "complete"]
    failed = 0
    for e in complete:
        problem = store.problem(e)
        if problem:
            failed += 1
            print(f"FAILED {e.kind}/{e.key}: {problem} ({e.path})")
    print(f"{len(complete)} stored results checked under {store.root}: {failed} failed")
    return 1 if failed else 0


def _selected(entries: list[Entry], args: argparse.Namespace) -> list[Entry]:
    return [e for e in entries if (args.kind is None or e.kind == args.kind)
            and (args.key is None or e.key.startswith(args.key))]


def _rm(store: Store, args: argparse.Namespace) -> int:
    if not args.kind and not args.key:
        print("badminima: store rm needs --kind or --key (it never removes every result at once)", file=sys.stderr)
        return 2
    chosen = _selected(store.entries(), args)
    if not chosen:
        print(f"badminima: no result under {store.root} matches --kind {args.kind} --key {args.key}",
              file=sys.stderr)
        return 1
    busy = 0
    for e in chosen:
        if store.remove(e):
            print(f"removed {e.kind}/{e.path.name} ({e.status}, {_size(e.size)})")
        else:
            busy += 1
            print(f"badminima: {e.kind}/{e.path.name} is being computed by another process; not removed",
                  file=sys.stderr)
    return 1 if busy else 0
