"""What a chapter's work is made of: jobs (what each runs, stores, needs and reads), the check of an executor's name,
the progress bar over a job list, the error when jobs fail, and how a signal stops them. grid.py runs a list of
them."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tqdm.auto import tqdm

from badminima.core.config import ParameterError
from badminima.core.store import Store

Result = tuple[str, Any]   # (store kind, configuration) of one stored result


@dataclass(frozen=True)
class Job:
    run: Callable[[Store], Any]     # trains or loads into the given store; picklable (a module-level function or
                                    # a functools.partial of one), since other processes run it
    outputs: tuple[Result, ...]     # what it stores: a job whose outputs are all stored is not run again
    after: frozenset[int] = frozenset()   # the jobs of the same list whose outputs it reads
    inputs: tuple[Result, ...] = ()  # every stored result it reads (a Ray worker is sent those already stored)
    label: str = ""
    gpus: float = 1.0               # the share of a GPU its Ray task asks for where the cluster has GPUs


# A Ray address as ray.init takes one: "auto", or HOST:PORT, optionally after "ray://" (Ray Client).
RAY_ADDRESS = re.compile(r"auto|(ray://)?[A-Za-z0-9][A-Za-z0-9.-]*:(\d{1,5})")


def check_executor(executor: str) -> str | None:
    """The Ray address an executor names ("ray": start a cluster on this machine, "ray:ADDRESS": join one,
    "ray:auto": the running one), or None for "local"; ParameterError for anything else."""
    if executor in ("local", "ray"):
        return None
    address = executor[4:] if isinstance(executor, str) and executor.startswith("ray:") else None
    match = RAY_ADDRESS.fullmatch(address) if address else None
    if match and (match.group(2) is None or 0 < int(match.group(2)) < 65536):
        return address
    raise ParameterError(f"executor={executor!r} is not allowed; choose 'local', 'ray' (a cluster started on this "
                         "machine), or 'ray:ADDRESS' with ADDRESS auto (the running cluster), HOST:PORT or "
                         "ray://HOST:PORT")


def done(job: Job, store: Store) -> bool:
    return all(store.has(kind, config) for kind, config in job.outputs)


class Progress:
    """One bar over a grid's jobs: done, running, waiting (for a job it needs) and failed, with tqdm's estimate of
    the time left from the jobs done so far."""

    def __init__(self, jobs: list[Job], enabled: bool, desc: str):
        self.jobs, self.done, self.failed, self.running = jobs, set(), set(), set()
        self.bar = tqdm(total=len(jobs), desc=desc, unit="job", leave=False, disable=not enabled)

    def start(self, i: int) -> None:
        self.running.add(i)
        self.show()

    def finish(self, i: int, ok: bool = True) -> None:
        self.running.discard(i)
        (self.done if ok else self.failed).add(i)
        self.bar.update(1)
        self.show()

    def show(self) -> None:
        waiting = len(self.jobs) - len(self.done) - len(self.failed) - len(self.running)
        self.bar.set_postfix(done=len(self.done), running=len(self.running), waiting=waiting,
                             failed=len(self.failed))

    def close(self) -> None:
        self.bar.close()


class GridFailed(RuntimeError):
    """Some jobs failed (after their retries); the others ran and are stored."""


def fail(errors: dict[int, BaseException], jobs: list[Job], bar: Progress) -> None:
    """Raise GridFailed if a job failed; those that needed it count as failed too (they could not run)."""
    if errors:
        i, first = next(iter(errors.items()))
        raise GridFailed(f"{len(bar.failed)} of {len(jobs)} jobs failed; the first, {jobs[i].label or i}: "
                         f"{type(first).__name__}: {first}") from first


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. Raised where the process is, so that every lock is released and every partial run
    kept as on any error; a KeyboardInterrupt, so code that stops on Ctrl-C stops on it too."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def status(self) -> int:
        """The exit status of a process that a signal ended, as a shell reports it."""
        return 128 + self.signum


SIGNALS = (signal.SIGINT, signal.SIGTERM)


def raise_interrupted(signum: int, frame: Any) -> None:
    """A signal handler: stop what this process does."""
    for other in SIGNALS:   # a second signal must not cut short the cleanup the first one started
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise Interrupted (the first one; later ones are ignored until the block ends).
    Only the main thread can take signals: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, raise_interrupted)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _parents() -> dict[int, int]:
    """Every live process's parent, read from /proc (psutil is not a dependency); zombies count as gone."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:   # it ended while we read
            continue
        state, parent = text[text.rindex(")") + 2:].split()[:2]
        if state != "Z":
            parents[int(stat.parent.name)] = int(parent)
    return parents


def descendants(pid: int) -> list[int]:
    """The live processes `pid` started, and theirs, parents first."""
    parents = _parents()
    found, i = [pid], 0
    while i < len(found):
        found += [child for child, parent in parents.items() if parent == found[i]]
        i += 1
    return found[1:]


def children(pid: int) -> list[int]:
    return [child for child, parent in _parents().items() if parent == pid]


def alive(pids: list[int]) -> list[int]:
    parents = _parents()
    return [pid for pid in pids if pid in parents]


def end(pids: list[int], grace: float) -> None:
    """SIGTERM `pids` (where they still run), give them `grace` seconds to clean up, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
