"""Results keyed by their whole configuration: each run is computed once (one process at a time, under a lock),
written durably, checked on every load, and set aside and recomputed if damaged.

Layout under the root folder:

    <kind>/<key>/                 a stored result: config.json, metrics.json, weights.pt, manifest.json
    <kind>/<key>.partial/         a run in progress (config.json and its checkpoints): resumed when restarted
    <kind>/<key>.lock             exists while a process holds the key's lock
    <kind>/<key>.corrupt-<time>/  a damaged result, moved aside for inspection

`key` hashes the configuration in canonical form together with FORMAT (and the kernels, where they are not the
pinned ones). manifest.json, written last, holds the SHA-256 of the three other files, the format, the time it was
stored, the identity of the data the run read and the kernels it was computed with. Every result is computed on
runtime.RUN_THREADS threads.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from badminima.core import runtime
from badminima.core.config import ParameterError, as_dict, config_key

# Part of every key: raise it when a change to how runs are computed must retire every stored result.
FORMAT = 3   # 3: results computed with the pinned kernels (runtime.KERNELS) on one thread
FILES = ("config.json", "metrics.json", "weights.pt")
MANIFEST = "manifest.json"
PARTIAL, LOCK, CORRUPT = ".partial", ".lock", ".corrupt-"
# Written into a store's root when it first stores anything: the store verbs (list, verify, rm) act only on a folder
# that carries it, so a mistyped --results or $BADMINIMA_RESULTS can never make them remove the user's own folders.
MARKER = ".badminima-store"

Weights = dict[str, torch.Tensor]
log = logging.getLogger(__name__)


@dataclass
class Stored:
    config: dict
    metrics: dict
    weights: Weights


@dataclass
class Entry:
    """One folder of the store as `badminima store list` shows it; status is complete, partial or corrupt."""
    kind: str
    key: str
    status: str
    path: Path
    size: int
    modified: float
    config: dict | None


class NotStored(LookupError):
    """A result that a read-only store was asked for is not there."""


class CorruptEntry(NotStored):
    """A read-only store found a damaged result; it leaves it where it is and does not recompute it."""


class DataMismatch(ParameterError):
    """A stored result was computed from other data than the data folder now holds."""


class _Damaged(Exception):
    """A stored result that fails its checks; the message says which file and how."""


JOURNAL = "BADMINIMA_JOURNAL"


def _journal(event: str, kind: str, path: Path) -> None:
    """With $BADMINIMA_JOURNAL set (the book's executor sets it for a chapter's kernel), one line per result
    loaded or trained, so the executor can show progress and count what a chapter trained. Lines this short are
    appended whole even when worker processes write at once."""
    journal = os.environ.get(JOURNAL)
    if journal:
        with open(journal, "a") as f:
            f.write(f"{event} {kind} {path.name}\n")


def default_root() -> Path:
    root = os.environ.get("BADMINIMA_RESULTS", "results")
    if not root:   # an empty path would be the current folder
        raise ParameterError("BADMINIMA_RESULTS='' is empty; allowed: a folder path, or unset for ./results")
    return Path(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, write: Callable[[Any], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, obj: Any) -> None:
    _write_durably(path, lambda f: f.write(json.dumps(obj, indent=1, sort_keys=True).encode()))


def _same_data(stored: dict | None, given: dict) -> bool:
    return stored is not None and stored.get("sha256") == given.get("sha256")


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _split_name(name: str) -> tuple[str, str]:
    """(key, status) of a result folder's name under <kind>/."""
    for marker, status in ((PARTIAL, "partial"), (CORRUPT, "corrupt")):
        if marker in name:
            return name.split(marker)[0], status
    return name, "complete"


class Store:
    """A folder of results, laid out as the module docstring says. A run in progress lives in <key>.partial/ and
    is renamed into place only when complete, so a failed or killed run never replaces a finished one, and a
    restarted run resumes from its checkpoints."""

    def __init__(self, root: str | Path | None = None):
        if root is not None and not str(root):
            raise ParameterError("results='' is empty; allowed: a folder path")
        self.root = Path(root) if root is not None else default_root()

    def check_is_store(self) -> None:
        """Raise ParameterError unless the root is missing (an empty store) or carries the store's MARKER."""
        if self.root.exists() and not (self.root / MARKER).is_file():
            raise ParameterError(f"results={str(self.root)!r} is not a result store (it has no {MARKER}, which "
                                 "every store gets when it first stores a result); allowed: a folder badminima "
                                 "stored results in")

    def key(self, config: Any) -> str:
        """The configuration's key; a process computing with other kernels than the pinned ones has keys of its
        own (runtime.kernels_tag), so a store never mixes their results with the reproducible ones."""
        tag = runtime.kernels_tag()
        return config_key({"store_format": FORMAT, "config": config, **({"kernels": tag} if tag else {})})

    def path(self, kind: str, config: Any) -> Path:
        return self.root / kind / self.key(config)

    def load(self, kind: str, config: Any, data: dict | None = None) -> Stored | None:
        """The stored result, or None if there is none. A damaged one is moved aside (with a warning) and None
        returned. `data`, the identity of the data the caller would compute from (a dict with a "sha256"), must
        match the one stored with the result, else DataMismatch."""
        path = self.path(kind, config)
        try:
            return self._checked(kind, path, data)
        except _Damaged:
            with self._lock(path):
                return self._load_locked(kind, path, data)

    def load_or_run(self, kind: str, config: Any, run: Callable[[Path], tuple[dict, Weights]],
                    data: dict | None = None) -> Stored:
        """The stored result for `config`, or the result of `run(workdir)` (metrics, weights), stored first. One
        process computes a key at a time; another asking for it meanwhile waits, then loads it."""
        path = self.path(kind, config)
        with contextlib.suppress(_Damaged):
            stored = self._checked(kind, path, data)
            if stored is not None:
                return stored
        with self._lock(path):
            stored = self._load_locked(kind, path, data)
            return stored if stored is not None else self._compute(kind, config, path, run, data)

    def load_or_run_many(self, kind: str, configs: list, run: Callable[[Path, list[int]], list[tuple[dict, Weights]]],
                         data: dict | None = None) -> list[Stored]:
        """The stored results for `configs`, computing the missing ones together: `run(workdir, todo)` returns
        (metrics, weights) for each index in `todo`. The keys are locked in one order (so two processes cannot
        deadlock) and the shared work folder is keyed by the missing configurations, so a killed group resumes
        when the same group is asked for again."""
        paths = [self.path(kind, c) for c in configs]
        with contextlib.ExitStack() as locks:
            for path in sorted(set(paths)):
                locks.enter_context(self._lock(path))
            first = [paths.index(p) for p in paths]   # a configuration given twice is run once
            found = {i: self._load_locked(kind, paths[i], data) for i in set(first)}
            todo = [i for i in sorted(found) if found[i] is None]
            if todo:
                group = self.path(kind + "-group", [configs[i] for i in todo])
                locks.enter_context(self._lock(group))   # the lock `remove` checks before touching the work folder
                work = group.with_name(group.name + PARTIAL)
                work.mkdir(parents=True, exist_ok=True)
                with runtime.threads(runtime.RUN_THREADS):
                    results = run(work, todo)
                for i, result in zip(todo, results):
                    found[i] = self._compute(kind, configs[i], paths[i], lambda _: result, data)
                shutil.rmtree(work)
        if todo:   # once the group's lock file is gone with its lock, its folder goes too unless another group is there
            with contextlib.suppress(OSError):
                group.parent.rmdir()
        return [found[i] for i in first]

    def entries(self) -> list[Entry]:
        """Every result folder under the root: complete, partial (a run in progress or killed) or corrupt."""
        found = []
        for kind_dir in sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []:
            for path in sorted(p for p in kind_dir.iterdir() if p.is_dir()):  # lock files are not folders
                try:
                    config = json.loads((path / "config.json").read_text())
                except (OSError, ValueError):
                    config = None
                found.append(Entry(kind_dir.name, *_split_name(path.name), path, _folder_size(path),
                                   path.stat().st_mtime, config))
        return found

    def checksums(self, kind: str, key: str) -> dict[str, str]:
        """The SHA-256 of a stored result's files, as its manifest holds them; NotStored where there is none."""
        manifest = self.root / kind / key / MANIFEST
        if not manifest.is_file():
            raise NotStored(f"{kind}/{key} is not in the store at {self.root}")
        return json.loads(manifest.read_text())["sha256"]

    def has(self, kind: str, config: Any) -> bool:
        """Whether a complete result is stored for `config` (its files are not checked here)."""
        return (self.path(kind, config) / MANIFEST).is_file()

    def files(self, kind: str, key: str) -> dict[str, bytes]:
        """The files of a stored result whose checksums pass, to copy it into another store (adopt)."""
        path = self.root / kind / key
        try:
            self._verified(path)
        except _Damaged as damaged:
            raise CorruptEntry(f"stored {kind} result {path} is damaged ({damaged})") from None
        return {name: (path / name).read_bytes() for name in (*FILES, MANIFEST)}

    def adopt(self, kind: str, key: str, files: dict[str, bytes]) -> bool:
        """Store a result computed in another store from its files (as `files` gave them), byte for byte; False
        (and nothing written) if it is stored here already. Files that fail their checksums raise CorruptEntry."""
        path = self.root / kind / key
        with self._lock(path):
            with contextlib.suppress(_Damaged):
                if path.exists() and self._verified(path):
                    return False
            work = path.with_name(path.name + ".adopting")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            for name, content in files.items():
                _write_durably(work / name, lambda f, content=content: f.write(content))
            try:
                self._verified(work)
            except _Damaged as damaged:
                shutil.rmtree(work)
                raise CorruptEntry(f"{kind} result {key} arrived damaged ({damaged})") from None
            if path.exists():
                self._set_aside(path, "replaced by a complete copy")
            shutil.rmtree(path.with_name(path.name + PARTIAL), ignore_errors=True)
            os.replace(work, path)
            _fsync_dir(path.parent)
            _journal("trained", kind, path)
            return True

    def problem(self, entry: Entry) -> str | None:
        """Why a complete entry fails its checks (missing or truncated file, checksum), or None if it passes."""
        try:
            self._verified(entry.path)
        except _Damaged as damaged:
            return str(damaged)
        return None

    def remove(self, entry: Entry) -> bool:
        """Delete an entry's folder; False (and nothing deleted) while a process holds its key's lock."""
        with self._lock(entry.path.with_name(entry.key), wait=False) as held:
            if held:
                shutil.rmtree(entry.path)
            return held

    def _checked(self, kind: str, path: Path, data: dict | None) -> Stored | None:
        if not path.exists():
            return None
        manifest = self._verified(path)
        if data is not None and not _same_data(manifest.get("data"), data):
            raise DataMismatch(_mismatch(kind, path, manifest.get("data"), data))
        try:
            weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
            stored = Stored(json.loads((path / "config.json").read_text()),
                            json.loads((path / "metrics.json").read_text())["metrics"], weights)
        except Exception as err:  # a file with the right checksum that still does not parse was stored damaged
            raise _Damaged(f"a file does not parse ({type(err).__name__})") from err
        _journal("loaded", kind, path)
        return stored

    def _verified(self, path: Path) -> dict:
        """The manifest of a stored result whose files are all there and match their checksums."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            sums = manifest["sha256"]
        except FileNotFoundError:
            raise _Damaged(f"{MANIFEST} is missing") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise _Damaged(f"{MANIFEST} is unreadable") from None
        for name in FILES:
            if not (path / name).is_file():
                raise _Damaged(f"{name} is missing")
            if _sha256(path / name) != sums.get(name):
                raise _Damaged(f"{name} fails its checksum")
        return manifest

    def _load_locked(self, kind: str, path: Path, data: dict | None) -> Stored | None:
        try:
            return self._checked(kind, path, data)
        except _Damaged as damaged:
            self._set_aside(path, str(damaged))
            return None

    def _set_aside(self, path: Path, reason: str) -> None:
        aside = path.with_name(f"{path.name}{CORRUPT}{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}")
        os.replace(path, aside)
        log.warning("badminima store: %s is damaged (%s); moved to %s and recomputing", path, reason, aside.name)

    def _compute(self, kind: str, config: Any, path: Path, run: Callable[[Path], tuple[dict, Weights]],
                 data: dict | None) -> Stored:
        work = path.with_name(path.name + PARTIAL)
        work.mkdir(parents=True, exist_ok=True)
        try:
            _write_json(work / "config.json", as_dict(config))  # first, so a partial run shows what it is
            with runtime.threads(runtime.RUN_THREADS):
                metrics, weights = run(work)
        except BaseException:
            if [p.name for p in work.iterdir()] == ["config.json"]:
                shutil.rmtree(work)  # nothing to resume from; a folder with checkpoints stays for a resume
            raise
        weights = {k: v.detach().cpu() for k, v in weights.items()}
        _write_durably(work / "weights.pt", lambda f: torch.save(weights, f))
        _write_json(work / "metrics.json", {"metrics": metrics})
        for leftover in [*work.glob("*.ckpt"), *work.glob("*.tmp")]:
            leftover.unlink()
        _write_json(work / MANIFEST, {"format": FORMAT, "kind": kind, "key": path.name, "stored": time.time(),
                                      "data": data, "kernels": runtime.kernels(),
                                      "sha256": {name: _sha256(work / name) for name in FILES}})
        _fsync_dir(work)
        os.replace(work, path)
        _fsync_dir(path.parent)
        _journal("trained", kind, path)
        return self._checked(kind, path, data)

    @contextlib.contextmanager
    def _lock(self, path: Path, wait: bool = True) -> Iterator[bool]:
        """Hold <path>.lock exclusively (yields True), or yield False at once if `wait` is off and it is held.
        The file is removed on release; a process that locked it just before must then retry on a fresh one,
        which the inode check below catches."""
        lock = path.with_name(path.name + LOCK)
        lock.parent.mkdir(parents=True, exist_ok=True)
        (self.root / MARKER).touch()
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    yield False
                    return
                raise
            try:
                current = os.stat(lock).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)
            os.close(fd)


def _mismatch(kind: str, path: Path, stored: dict | None, given: dict) -> str:
    was = (f"{stored.get('dataset')} data {str(stored.get('sha256'))[:12]} read from {stored.get('folder')}"
           if stored else "data it did not record")
    return (f"data folder {given.get('folder')}: its {given.get('dataset')} data ({str(given.get('sha256'))[:12]}) "
            f"differs from the {was}, which the stored {kind} result {path} was computed from; point "
            f"$BADMINIMA_DATA (--data-dir) at that data, use another results folder, or remove the result with "
            f"`badminima store rm --results {path.parent.parent} --kind {kind} --key {path.name}`")


class ReadOnlyStore(Store):
    """A store that only reads: a missing result raises NotStored and a damaged one CorruptEntry instead of being
    computed, so a page that gathers results from the chapters never trains (nor moves anything)."""

    def load(self, kind: str, config: Any, data: dict | None = None) -> Stored | None:
        path = self.path(kind, config)
        try:
            return self._checked(kind, path, data)
        except _Damaged as damaged:
            raise CorruptEntry(f"stored {kind} result {path} is damaged ({damaged}); rerun its chapter "
                               f"to recompute it") from None

    def load_or_run(self, kind: str, config: Any, run: Callable[[Path], tuple[dict, Weights]],
                    data: dict | None = None) -> Stored:
        stored = self.load(kind, config, data)
        if stored is None:
            raise NotStored(f"no stored {kind} result {self.key(config)} under {self.root}")
        return stored

    def load_or_run_many(self, kind: str, configs: list, run: Callable, data: dict | None = None) -> list[Stored]:
        return [self.load_or_run(kind, c, run, data) for c in configs]
