"""A chapter's work as a list of jobs with dependencies, and the executors that run it: "local" (this machine: the
calling process, or one process per core sharing its result store) or "ray" / "ray:ADDRESS" (tasks of a Ray
cluster, core/on_ray.py). A job trains (or loads) its results into the store it is given; whichever executor ran
it, the store ends with the same results."""
from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from badminima.core.config import ParameterError
from badminima.core.store import ReadOnlyStore, NotStored, Store

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


def run(jobs: list[Job], store: Store | None = None, executor: str = "local", workers: int = 1,
        progress: bool = False, desc: str = "jobs") -> None:
    """Run every job whose outputs are not all stored, each after the jobs it needs: locally in this process
    (`workers` 1) or over `workers` processes, or as Ray tasks (on_ray.run). A job that fails does not stop the
    others, except those that need it; GridFailed then names it. A ReadOnlyStore raises NotStored instead, saying
    how many are missing (a page that gathers stored results never trains)."""
    store = store or Store()
    address = check_executor(executor)
    jobs = _same_work_once(jobs, store)
    todo = [i for i, job in enumerate(jobs) if not done(job, store)]
    if todo and isinstance(store, ReadOnlyStore):
        raise NotStored(f"{len(todo)} of {len(jobs)} jobs have results missing from the store at {store.root}")
    if not todo:
        return
    bar = Progress(jobs, progress, desc)
    bar.done.update(set(range(len(jobs))) - set(todo))
    try:
        if executor != "local":
            from badminima.core import on_ray

            on_ray.run(jobs, todo, store, address, bar)
        elif workers == 1:
            _in_process(jobs, todo, store, bar)
        else:
            _over_processes(jobs, todo, store, workers, bar)
    finally:
        bar.close()


def _same_work_once(jobs: list[Job], store: Store) -> list[Job]:
    """A job that stores what an earlier one stores waits for it (and then only loads): chapters may list the same
    work twice (two figures of one run)."""
    first: dict[frozenset, int] = {}
    out = []
    for i, job in enumerate(jobs):
        outputs = frozenset((kind, store.key(config)) for kind, config in job.outputs)
        if outputs in first:
            job = dataclasses.replace(job, after=job.after | {first[outputs]})
        first.setdefault(outputs, i)
        out.append(job)
    return out


def _in_process(jobs: list[Job], todo: list[int], store: Store, bar: Progress) -> None:
    errors: dict[int, BaseException] = {}
    for i in todo:
        if jobs[i].after & (bar.failed | set(errors)):
            bar.finish(i, ok=False)
            continue
        bar.start(i)
        try:
            jobs[i].run(store)
        except Exception as err:
            errors[i] = err
        bar.finish(i, ok=i not in errors)
    fail(errors, jobs, bar)


def _in_worker(job: Job, root: str) -> None:
    job.run(Store(root))


def _one_thread() -> None:
    torch.set_num_threads(1)


def _over_processes(jobs: list[Job], todo: list[int], store: Store, workers: int, bar: Progress) -> None:
    # The standard library's pool with a wait on dependencies: on one machine nothing more is needed, and it
    # keeps the local executor free of Ray's start-up and memory.
    waiting, errors = set(todo), {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_one_thread) as pool:
        running = {}
        while waiting or running:
            for i in sorted(waiting):
                if jobs[i].after & (bar.failed | set(errors)):
                    waiting.discard(i)
                    bar.finish(i, ok=False)
                elif jobs[i].after <= bar.done:
                    waiting.discard(i)
                    running[pool.submit(_in_worker, jobs[i], str(store.root))] = i
                    bar.start(i)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                if future.exception() is not None:
                    errors[i] = future.exception()
                bar.finish(i, ok=i not in errors)
    fail(errors, jobs, bar)

