"""Results keyed by their whole configuration: each run is computed once (one process at a time, under a lock),
written durably, checked on every load, and set aside and recomputed if damaged.

The folders it writes and the files of each are described in core/layout.py.

`key` hashes the configuration in canonical form together with FORMAT (and the kernels, where they are not the
pinned ones). manifest.json, written last, holds the SHA-256 of the three other files, the format, the time it was
stored, the identity of the data the run read, the kernels it was computed with and the stored results it loaded
while it was computed ("depends": kind/key names). Every result is computed on runtime.RUN_THREADS threads.
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from badminima.core import journal, layout, runtime
from badminima.core.layout import Entry, Stored, Weights
from badminima.core.config import ParameterError, as_dict, config_key

# Part of every key: raise it when a change to how runs are computed must retire every stored result.
FORMAT = 3   # 3: results computed with the pinned kernels (runtime.KERNELS) on one thread

log = logging.getLogger(__name__)


class NotStored(LookupError):
    """A result that a read-only store was asked for is not there."""


class CorruptEntry(NotStored):
    """A read-only store found a damaged result; it leaves it where it is and does not recompute it."""


class DataMismatch(ParameterError):
    """A stored result was computed from other data than the data folder now holds."""


# The names (kind/key) of the stored results loaded while a result is computed: they go into its manifest.
_LOADED: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("badminima_loaded", default=None)


def default_root() -> Path:
    root = os.environ.get("BADMINIMA_RESULTS", "results")
    if not root:   # an empty path would be the current folder
        raise ParameterError("BADMINIMA_RESULTS='' is empty; allowed: a folder path, or unset for ./results")
    return Path(root)


def _same_data(stored: dict | None, given: dict) -> bool:
    return stored is not None and stored.get("sha256") == given.get("sha256")


@contextlib.contextmanager
def _recording() -> Iterator[set[str]]:
    """Collect the names of the stored results loaded inside the block (in this thread)."""
    loaded: set[str] = set()
    token = _LOADED.set(loaded)
    try:
        yield loaded
    finally:
        _LOADED.reset(token)


class Store:
    """A folder of results, laid out as the module docstring says. A run in progress lives in <key>.partial/ and
    is renamed into place only when complete, so a failed or killed run never replaces a finished one, and a
    restarted run resumes from its checkpoints."""

    def __init__(self, root: str | Path | None = None):
        if root is not None and not str(root):
            raise ParameterError("results='' is empty; allowed: a folder path")
        # the name a message gives the root by: the argument (a command renames it to its option) or the variable
        self.named = "BADMINIMA_RESULTS" if root is None and os.environ.get("BADMINIMA_RESULTS") else "results"
        self.root = Path(root) if root is not None else default_root()

    def check_is_store(self) -> None:
        """For the verbs that read or remove results: raise ParameterError unless the root is a folder that
        carries layout.MARKER."""
        if not self.root.exists():
            problem = "does not exist"
        elif not self.root.is_dir():
            problem = "is not a folder"
        elif not (self.root / layout.MARKER).is_file():
            problem = (f"is not a result store (it has no {layout.MARKER}, which every store gets when it first "
                       "stores a result)")
        else:
            return
        raise ParameterError(f"{self.named}={str(self.root)!r} {problem}; allowed: a folder badminima stored "
                             "results in")

    def check_writable(self, option: str = "results") -> None:
        """Before a command computes anything: raise ParameterError unless the root (or, while it does not exist,
        the nearest folder above it) is a folder this process can write, and $BADMINIMA_JOURNAL is usable. The
        message names the root as `option` unless it came from $BADMINIMA_RESULTS."""
        existing = next(p for p in (self.root, *self.root.parents) if p.exists())
        if not existing.is_dir():
            problem = "is a regular file" if existing == self.root else f"is under {str(existing)!r}, a regular file"
        elif not os.access(existing, os.W_OK | os.X_OK):
            problem = ("cannot be written" if existing == self.root
                       else f"is under {str(existing)!r}, which cannot be written")
        else:
            problem = self._try_writing(existing)
            if problem is None:
                journal.check()
                return
            if existing != self.root:
                problem = f"is under {str(existing)!r}, which {problem}"
        named = option if self.named == "results" else self.named
        raise ParameterError(f"{named}={str(self.root)!r} {problem}; allowed: a folder this process can write")

    @staticmethod
    def _try_writing(folder: Path) -> str | None:
        """Why `folder` cannot hold files, found by making (and removing) a folder in it; None: it can. os.access
        alone passes a root user anywhere, even under /proc or on a read-only file system."""
        try:
            with tempfile.TemporaryDirectory(dir=folder):
                return None
        except OSError as err:
            return f"cannot be written ({err.strerror})"

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
        journal.check()
        path = self.path(kind, config)
        try:
            return self._checked(kind, path, data)
        except layout.Damaged:
            with self._lock(path):
                return self._load_locked(kind, path, data)

    def load_or_run(self, kind: str, config: Any, run: Callable[[Path], tuple[dict, Weights]],
                    data: dict | None = None) -> Stored:
        """The stored result for `config`, or the result of `run(workdir)` (metrics, weights), stored first. One
        process computes a key at a time; another asking for it meanwhile waits, then loads it."""
        journal.check()
        path = self.path(kind, config)
        with contextlib.suppress(layout.Damaged):
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
        journal.check()
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
                work = group.with_name(group.name + layout.PARTIAL)
                work.mkdir(parents=True, exist_ok=True)
                try:
                    with _recording() as loaded, runtime.threads(runtime.RUN_THREADS):
                        results = run(work, todo)
                except BaseException:
                    with contextlib.suppress(OSError):
                        work.rmdir()   # only while empty: a folder with checkpoints stays for a resume
                    raise
                with runtime.signals_deferred():   # stored members and a kept work folder would orphan it on a rerun
                    for i, result in zip(todo, results):
                        found[i] = self._compute(kind, configs[i], paths[i], lambda _, r=result: r, data, loaded)
                    shutil.rmtree(work)
        if todo:   # once the group's lock file is gone with its lock, its folder goes too unless another group is there
            with contextlib.suppress(OSError):
                group.parent.rmdir()
        return [found[i] for i in first]

    def entries(self) -> list[Entry]:
        """Every folder the store wrote under the root: a result (complete; damaged where its manifest is missing
        or of the wrong shape), partial (a run in progress or killed) or corrupt (set aside)."""
        found = []
        for kind_dir in sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []:
            for path in sorted(kind_dir.iterdir()):
                name = layout.NAME.fullmatch(path.name)
                if name is None or not path.is_dir():   # lock files, and whatever the store did not write
                    continue
                with contextlib.suppress(FileNotFoundError):   # another process removed or renamed it meanwhile
                    found.append(self._entry(kind_dir.name, name, path))
        return found

    def _entry(self, kind: str, name: re.Match, path: Path) -> Entry:
        suffix, manifest, problem = name["suffix"], None, None
        status = layout.STATUS.get(suffix, "corrupt")
        if status == "complete":
            try:
                manifest = layout.read_manifest(path, kind, name["key"])
            except layout.Damaged as damaged:
                status, problem = "damaged", str(damaged)
        return Entry(kind, name["key"], status, path, layout.folder_size(path), path.stat().st_mtime,
                     layout.read_config(path), manifest, problem)

    def checksums(self, kind: str, key: str) -> dict[str, str]:
        """The SHA-256 of a stored result's files, as its manifest holds them; NotStored where there is none,
        CorruptEntry where its manifest is damaged."""
        path = self.root / kind / key
        if not (path / layout.MANIFEST).is_file():
            raise NotStored(f"{kind}/{key} is not in the store at {self.root}")
        try:
            return layout.read_manifest(path, kind, key)["sha256"]
        except layout.Damaged as damaged:
            raise CorruptEntry(f"stored {kind} result {path} is damaged ({damaged})") from None

    def has(self, kind: str, config: Any) -> bool:
        """Whether a result is stored for `config`: a manifest of the right shape (its files are not checked
        here; a load checks them)."""
        path = self.path(kind, config)
        try:
            layout.read_manifest(path, kind, path.name)
        except layout.Damaged:
            return False
        return True

    def files(self, kind: str, key: str) -> dict[str, bytes]:
        """The files of a stored result whose checks pass, to copy it into another store (adopt)."""
        path = self.root / kind / key
        try:
            self._verified(path, kind, key)
            layout.parsed(path)
        except layout.Damaged as damaged:
            raise CorruptEntry(f"stored {kind} result {path} is damaged ({damaged})") from None
        return {name: (path / name).read_bytes() for name in (*layout.FILES, layout.MANIFEST)}

    def adopt(self, kind: str, key: str, files: dict[str, bytes]) -> bool:
        """Store a result computed in another store from its files (as `files` gave them), byte for byte; False
        (and nothing written) if it is stored here already. Files that fail their checks raise CorruptEntry."""
        journal.check()
        path = self.root / kind / key
        with self._lock(path):
            with contextlib.suppress(layout.Damaged):
                if path.exists() and self._verified(path, kind, key):
                    return False
            work = path.with_name(path.name + ".adopting")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            for name, content in files.items():
                layout.write_durably(work / name, lambda f, content=content: f.write(content))
            try:
                self._verified(work, kind, key)
                layout.parsed(work)
            except layout.Damaged as damaged:
                shutil.rmtree(work)
                raise CorruptEntry(f"{kind} result {key} arrived damaged ({damaged})") from None
            if path.exists():
                self._set_aside(path, "replaced by a complete copy")
            shutil.rmtree(path.with_name(path.name + layout.PARTIAL), ignore_errors=True)
            os.replace(work, path)
            layout.fsync_dir(path.parent)
            journal.record("trained", kind, path)
            return True

    def problem(self, entry: Entry) -> str | None:
        """Why an entry in a result's place fails its checks (a manifest missing or of the wrong shape, a missing
        or truncated file, a checksum, a file that does not parse), or None if it passes."""
        try:
            self._verified(entry.path, entry.kind, entry.key)
            layout.parsed(entry.path)
        except layout.Damaged as damaged:
            return str(damaged)
        return None

    def remove(self, entry: Entry) -> bool:
        """Delete an entry's folder; False (and nothing deleted) while a process holds its key's lock: the one
        load_or_run holds while it computes the key, load_or_run_many holds for each key of a group and for the
        group's work folder, and a damaged result is set aside under."""
        with self._lock(entry.path.with_name(entry.key), wait=False) as held:
            if held:
                shutil.rmtree(entry.path)
            return held

    def _checked(self, kind: str, path: Path, data: dict | None) -> Stored | None:
        if not path.exists():
            return None
        manifest = self._verified(path, kind, path.name)
        if data is not None and not _same_data(manifest["data"], data):
            raise DataMismatch(_mismatch(kind, path, manifest["data"], data))
        stored = layout.parsed(path)
        journal.record("loaded", kind, path)
        loaded = _LOADED.get()
        if loaded is not None:
            loaded.add(f"{kind}/{path.name}")
        return stored

    def _verified(self, path: Path, kind: str, key: str) -> dict:
        """The manifest of a stored result whose files are all there and match their checksums."""
        manifest = layout.read_manifest(path, kind, key)
        for name in layout.FILES:
            if not (path / name).is_file():
                raise layout.Damaged(f"{name} is missing")
            try:
                matches = layout.sha256(path / name) == manifest["sha256"][name]
            except OSError as err:
                raise layout.Damaged(f"{name} is unreadable ({err.strerror})") from None
            if not matches:
                raise layout.Damaged(f"{name} fails its checksum")
        return manifest

    def _load_locked(self, kind: str, path: Path, data: dict | None) -> Stored | None:
        try:
            return self._checked(kind, path, data)
        except layout.Damaged as damaged:
            self._set_aside(path, str(damaged))
            return None

    def _set_aside(self, path: Path, reason: str) -> None:
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}"
        aside = path.with_name(f"{path.name}{layout.CORRUPT}{stamp}")
        os.replace(path, aside)
        log.warning("badminima store: %s is damaged (%s); moved to %s and recomputing", path, reason, aside.name)

    def _compute(self, kind: str, config: Any, path: Path, run: Callable[[Path], tuple[dict, Weights]],
                 data: dict | None, depends: set[str] = frozenset()) -> Stored:
        work = path.with_name(path.name + layout.PARTIAL)
        work.mkdir(parents=True, exist_ok=True)
        try:
            layout.write_json(work / "config.json", as_dict(config))  # first, so a partial run shows what it is
            with _recording() as loaded, runtime.threads(runtime.RUN_THREADS):
                metrics, weights = run(work)
        except BaseException:
            if [p.name for p in work.iterdir()] == ["config.json"]:
                shutil.rmtree(work)  # nothing to resume from; a folder with checkpoints stays for a resume
            raise
        weights = {k: v.detach().cpu() for k, v in weights.items()}
        layout.write_durably(work / "weights.pt", lambda f: torch.save(weights, f))
        layout.write_json(work / "metrics.json", {"metrics": metrics})
        for leftover in [*work.glob("*.ckpt"), *work.glob("*.tmp")]:
            leftover.unlink()
        layout.write_json(work / layout.MANIFEST, {
            "format": FORMAT, "kind": kind, "key": path.name, "stored": time.time(), "data": data,
            "kernels": runtime.kernels(), "depends": sorted(depends | loaded),
            "sha256": {name: layout.sha256(work / name) for name in layout.FILES}})
        layout.fsync_dir(work)
        os.replace(work, path)
        layout.fsync_dir(path.parent)
        journal.record("trained", kind, path)
        return self._checked(kind, path, data)

    @contextlib.contextmanager
    def _lock(self, path: Path, wait: bool = True) -> Iterator[bool]:
        """Hold <path>.lock exclusively (yields True), or yield False at once if `wait` is off and it is held.
        The file is removed on release; a process that locked it just before must then retry on a fresh one,
        which the inode check below catches."""
        self.check_writable()   # one line, not an OSError, where the root cannot hold a store
        lock = path.with_name(path.name + layout.LOCK)
        while True:
            lock.parent.mkdir(parents=True, exist_ok=True)
            (self.root / layout.MARKER).touch()
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:   # a group that just ended removed its emptied folder (load_or_run_many)
                continue
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
        journal.check()
        path = self.path(kind, config)
        try:
            return self._checked(kind, path, data)
        except layout.Damaged as damaged:
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
