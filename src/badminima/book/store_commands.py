"""`badminima store list|verify|rm`: see, check and prune the result store."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from badminima.core.config import ParameterError, config_key
from badminima.core.store import Entry, Store

# The configuration fields `store list` shows, wherever they sit in a configuration's nesting.
MAIN_FIELDS = ("group", "dataset", "model", "width", "widths", "seed", "seeds", "replication", "noise_percent",
               "augment", "lr", "max_epochs")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    store = subparsers.add_parser("store", help="list, verify or remove stored results",
                                  description="See and manage the result store.")
    actions = store.add_subparsers(dest="action", required=True)
    helps = {"list": "every stored result: kind, key, main fields, size, date, and whether it is complete, damaged "
                     "(and why), partial or set aside as corrupt",
             "verify": "check every stored result's manifest, checksums and files; exit status 1 if any fails",
             "rm": "remove the results selected by --kind and/or --key, but none being computed, nor one that other "
                   "stored results were computed from (unless --force)"}
    for name, text in helps.items():
        p = actions.add_parser(name, help=text, description=text)
        p.add_argument("--results", help="result store folder (default: $BADMINIMA_RESULTS or ./results)")
        if name == "rm":
            p.add_argument("--kind", help="only results of this kind (image, adversarial, widths, ...)")
            p.add_argument("--key", help="only results whose key starts with this")
            p.add_argument("--force", action="store_true",
                           help="remove a result even where other stored results were computed from it")


def run(args: argparse.Namespace) -> int:
    try:
        store = Store(args.results)
        store.check_is_store()
    except ParameterError as err:
        raise err.renamed("--results") if args.results is not None and err.name == "results" else err
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


def _checked(store: Store) -> list[Entry]:
    """The store's entries, each in a result's place checked whole: one that fails is called damaged."""
    entries = store.entries()
    for e in entries:
        if e.status == "complete":
            e.problem = store.problem(e)
            e.status = "damaged" if e.problem else "complete"
    return entries


def _list(store: Store, args: argparse.Namespace) -> int:
    entries = _checked(store)
    if not entries:
        print(f"no results under {store.root}")
        return 0
    for e in entries:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.modified))
        why = f"  ({e.problem})" if e.problem else ""
        print(f"{e.kind:<18} {e.key:<16} {e.status:<8} {_size(e.size):>10}  {date}  {_fields(e.config)}{why}")
    return 0


def _verify(store: Store, args: argparse.Namespace) -> int:
    results = [e for e in _checked(store) if e.status in ("complete", "damaged")]
    failed = [e for e in results if e.problem]
    for e in failed:
        print(f"FAILED {e.kind}/{e.key}: {e.problem} ({e.path})")
    print(f"{len(results)} stored results checked under {store.root}: {len(failed)} failed")
    return 1 if failed else 0


def _selected(entries: list[Entry], args: argparse.Namespace) -> list[Entry]:
    return [e for e in entries if (args.kind is None or e.kind == args.kind)
            and (args.key is None or e.key.startswith(args.key))]


def _rm(store: Store, args: argparse.Namespace) -> int:
    if not args.kind and not args.key:
        print("badminima: store rm needs --kind or --key (it never removes every result at once)", file=sys.stderr)
        return 2
    store.check_writable("--results")
    entries = store.entries()
    chosen = _selected(entries, args)
    if not chosen:
        print(f"badminima: no result under {store.root} matches --kind {args.kind} --key {args.key}",
              file=sys.stderr)
        return 1
    needed = {} if args.force else _needed(entries, chosen)
    kept = 0
    for e in chosen:
        if e.path in needed:
            kept += 1
            names = ", ".join(f"{d.kind}/{d.key}" for d in needed[e.path])
            print(f"badminima: {e.kind}/{e.key} not removed: {len(needed[e.path])} stored result(s) were computed "
                  f"from it ({names}); select them too, or pass --force", file=sys.stderr)
        elif store.remove(e):
            print(f"removed {e.kind}/{e.path.name} ({e.status}, {_size(e.size)})")
        else:
            kept += 1
            print(f"badminima: {e.kind}/{e.path.name} is being computed by another process; not removed",
                  file=sys.stderr)
    return 1 if kept else 0


def _needed(entries: list[Entry], chosen: list[Entry]) -> dict[Path, list[Entry]]:
    """The chosen complete results that stored results outside the choice were computed from (by their folder),
    with those results."""
    computed_from = dependants(entries)
    keys = {(e.kind, e.key) for e in chosen}
    needed = {}
    for e in chosen:
        outside = [d for d in computed_from.get(f"{e.kind}/{e.key}", []) if (d.kind, d.key) not in keys]
        if outside and e.status == "complete":
            needed[e.path] = outside
    return needed


def dependants(entries: list[Entry]) -> dict[str, list[Entry]]:
    """For each complete entry's name (kind/key), the complete entries computed from it: those whose manifest
    names it (loaded while they were computed) and those whose configuration holds its configuration whole
    (as Paper B's retrain and readout groups hold their start's), computed with the same kernels."""
    complete = [e for e in entries if e.status == "complete"]
    by_config = defaultdict(list)
    for e in complete:
        if e.config is not None:
            by_config[config_key(e.config), _kernels(e)].append(f"{e.kind}/{e.key}")
    found = defaultdict(list)
    for e in complete:
        embedded = {name for k in _inner_keys(e.config) for name in by_config.get((k, _kernels(e)), [])}
        for name in sorted((set(e.manifest.get("depends", [])) | embedded) - {f"{e.kind}/{e.key}"}):
            found[name].append(e)
    return found


def _inner_keys(config: Any) -> set[str]:
    """The keys of every object nested in a configuration (in objects and lists), the configuration itself left
    out."""
    keys = set()
    for value in config.values() if isinstance(config, dict) else config if isinstance(config, list) else ():
        if isinstance(value, dict):
            keys.add(config_key(value))
        keys |= _inner_keys(value)
    return keys


def _kernels(entry: Entry) -> str:
    return json.dumps(entry.manifest.get("kernels"), sort_keys=True)
