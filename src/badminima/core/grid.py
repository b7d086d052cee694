"""A chapter's work as a list of jobs with dependencies, and the executors that run it: "local" (this machine: the
calling process, or one process per core sharing its result store) or "ray" / "ray:ADDRESS" (tasks of a Ray
cluster, core/on_ray.py). A job trains (or loads) its results into the store it is given; whichever executor ran
it, the store ends with the same results."""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from badminima.core import on_ray
from badminima.core.jobs import (Interrupted, Job, Progress, check_executor, done, end, fail, interruptible,
                                 raise_interrupted)
from badminima.core.store import NotStored, ReadOnlyStore, Store


def run(jobs: list[Job], store: Store | None = None, executor: str = "local", workers: int = 1,
        progress: bool = False, desc: str = "jobs") -> None:
    """Run every job whose outputs are not all stored, each after the jobs it needs: locally in this process
    (`workers` 1) or over `workers` processes, or as Ray tasks (on_ray.run). A job that fails does not stop the
    others, except those that need it; GridFailed then names it. A ReadOnlyStore raises NotStored instead, saying
    how many are missing (a page that gathers stored results never trains). SIGINT or SIGTERM (in the main thread)
    stops every job, each releasing its locks and keeping its checkpoints, and raises Interrupted."""
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
        with interruptible():
            if executor != "local":
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


# How long a worker that was sent SIGTERM has to release its locks before it is killed.
STOP_SECONDS = 30.0


def _in_worker(job: Job, root: str) -> None:
    signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        job.run(Store(root))
    except Interrupted as stop:   # the pool is being stopped: no result to send, and no next job to start
        os._exit(stop.status)
    finally:
        signal.signal(signal.SIGTERM, _exit_now)


def _exit_now(signum: int, frame: object) -> None:
    os._exit(128 + signum)


def _start_worker() -> None:
    torch.set_num_threads(1)
    # The pool's owner stops its workers (with SIGTERM) when it is interrupted; a terminal's Ctrl-C, which reaches
    # the whole process group, is its to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_now)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End a pool's workers now: each running job unwinds (releasing its locks, keeping its checkpoints) and its
    process exits; queued jobs never start."""
    processes = list((pool._processes or {}).values())   # ProcessPoolExecutor.terminate_workers is Python 3.14's
    pool.shutdown(wait=False, cancel_futures=True)
    end([p.pid for p in processes], STOP_SECONDS)
    for process in processes:
        process.join()


def _over_processes(jobs: list[Job], todo: list[int], store: Store, workers: int, bar: Progress) -> None:
    # The standard library's pool with a wait on dependencies: on one machine nothing more is needed, and it
    # keeps the local executor free of Ray's start-up and memory.
    waiting, errors = set(todo), {}
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker)
    try:
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
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()
    fail(errors, jobs, bar)

