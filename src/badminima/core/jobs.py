"""What a chapter's work is made of: jobs (what each runs, stores, needs and reads), the check of an executor's name,
the progress bar over a job list, and the error when jobs fail. grid.py runs a list of them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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


def check_executor(executor: str) -> str | None:
    """The Ray address an executor names ("ray": start a cluster on this machine, "ray:ADDRESS": join one,
    "ray:auto": the running one), or None for "local"; ParameterError for anything else."""
    if executor == "local":
        return None
    if executor == "ray" or (isinstance(executor, str) and executor.startswith("ray:") and len(executor) > 4):
        return executor[4:] or None
    raise ParameterError(f"executor={executor!r} is not allowed; choose 'local', 'ray' (a cluster started on this "
                         "machine), or 'ray:ADDRESS' ('ray:auto': the running cluster)")


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
