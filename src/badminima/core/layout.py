"""How the store's results lie on disk: the folders' names, each result's files, its manifest and the checks of both,
and how they are written (durably: flushed and synced, so a crash leaves either the old file or the new one) and
read back. Apart from core/store.py, which decides which result goes where and when, so that each reads in one
piece; the training loop's checkpoints are written the same way.

Layout under the root folder:

    <kind>/<key>/                 a stored result: config.json, metrics.json, weights.pt, manifest.json
    <kind>/<key>.partial/         a run in progress (config.json and its checkpoints): resumed when restarted
    <kind>/<key>.lock             exists while a process holds the key's lock
    <kind>/<key>.corrupt-<time>/  a damaged result, moved aside for inspection
    <kind>/<key>.adopting/        a result arriving from another store (Ray), renamed into place once checked

The store acts only on folders named so (a key is 16 hex digits): it never lists, moves or removes anything else.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

PARTIAL, LOCK, CORRUPT = ".partial", ".lock", ".corrupt-"
# Written into a store's root when it first stores anything: the store verbs (list, verify, rm) act only on a folder
# that carries it, so a mistyped --results or $BADMINIMA_RESULTS can never make them remove the user's own folders.
MARKER = ".badminima-store"
# The names of the folders the store writes under <kind>/ (see the docstring above).
NAME = re.compile(r"(?P<key>[0-9a-f]{16})(?P<suffix>\.partial|\.adopting|\.corrupt-[0-9T-]+)?")
STATUS = {None: "complete", PARTIAL: "partial", ".adopting": "partial"}   # and corrupt-<time>: "corrupt"
FILES = ("config.json", "metrics.json", "weights.pt")
MANIFEST = "manifest.json"
# A manifest's fields and their types: an entry is a result only when its manifest has them all ("depends", added
# later, only where present). A bool is no number here, though Python makes it an int.
MANIFEST_FIELDS = {"format": int, "kind": str, "key": str, "stored": (int, float), "data": (dict, type(None)),
                   "sha256": dict}

Weights = dict[str, torch.Tensor]


@dataclass
class Entry:
    """One folder of the store as `badminima store list` shows it; status is complete, damaged (a result's
    folder whose manifest is missing or of the wrong shape), partial or corrupt (set aside)."""
    kind: str
    key: str
    status: str
    path: Path
    size: int
    modified: float
    config: dict | None
    manifest: dict | None = None   # a complete entry's manifest, of the right shape
    problem: str | None = None     # why an entry in a result's place is damaged (status "damaged")


@dataclass
class Stored:
    config: dict
    metrics: dict
    weights: Weights


class Damaged(Exception):
    """A stored result that fails its checks; the message says which file and how."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, write: Callable[[Any], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: Path, obj: Any) -> None:
    write_durably(path, lambda f: f.write(json.dumps(obj, indent=1, sort_keys=True).encode()))


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def shape_problem(manifest: Any) -> str | None:
    """What is wrong with a parsed manifest's shape, or None."""
    if not isinstance(manifest, dict):
        return f"holds a {type(manifest).__name__}, not an object"
    for field, kind in MANIFEST_FIELDS.items():
        value = manifest.get(field, ...)
        if value is ... or isinstance(value, bool) or not isinstance(value, kind):
            return f"has no {field} of the right type"
    sums = manifest["sha256"]
    if not all(isinstance(sums.get(name), str) for name in FILES):
        return f"has no checksum for each of {', '.join(FILES)}"
    depends = manifest.get("depends", [])
    if not (isinstance(depends, list) and all(isinstance(name, str) for name in depends)):
        return "has a depends that is not a list of names"
    return None


def read_manifest(path: Path, kind: str, key: str) -> dict:
    """The manifest of the result folder `path` (kind/key), if it is there, parses, and has the right shape."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise Damaged(f"{MANIFEST} is missing") from None
    except (OSError, ValueError) as err:
        raise Damaged(f"{MANIFEST} does not parse ({type(err).__name__})") from None
    problem = shape_problem(manifest)
    if problem is None and (manifest["kind"], manifest["key"]) != (kind, key):
        problem = f"names another result ({manifest['kind']}/{manifest['key']})"
    if problem is not None:
        raise Damaged(f"{MANIFEST} {problem}")
    return manifest


def parse_file(path: Path, load: Callable[[Path], Any]) -> Any:
    try:
        return load(path)
    except Exception as err:  # a file with the right checksum that still does not parse was stored damaged
        raise Damaged(f"{path.name} does not parse ({type(err).__name__})") from None


def parsed(path: Path) -> Stored:
    """The files of a result folder, parsed; Damaged where one does not parse or is not of the store's shape
    (config.json an object, metrics.json {"metrics": object}, weights.pt names to tensors)."""
    config = parse_file(path / "config.json", lambda p: json.loads(p.read_text()))
    metrics = parse_file(path / "metrics.json", lambda p: json.loads(p.read_text()))
    weights = parse_file(path / "weights.pt", lambda p: torch.load(p, map_location="cpu", weights_only=True))
    if not isinstance(config, dict):
        raise Damaged(f"config.json holds a {type(config).__name__}, not an object")
    if not (isinstance(metrics, dict) and isinstance(metrics.get("metrics"), dict)):
        raise Damaged("metrics.json is not an object with an object under \"metrics\"")
    if not (isinstance(weights, dict) and all(isinstance(v, torch.Tensor) for v in weights.values())):
        raise Damaged("weights.pt does not hold a dict of tensors")
    return Stored(config, metrics["metrics"], weights)


def read_config(path: Path) -> dict | None:
    """An entry's config.json for `store list`, where it parses as an object."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None
