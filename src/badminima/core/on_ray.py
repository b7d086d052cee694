"""A job list (jobs.Job) as tasks of a Ray cluster, each job a task that asks for one CPU and, where the cluster has
GPUs, the job's share of one.

By default the workers share no file system with the driver: a task trains in a result store of its own, seeded
with the stored results the job reads (those the driver holds travel with the task; those of the jobs it needs
arrive as their tasks' return values, so it starts once they have run, not after the whole grid), and returns the
files of the results it computed, which the driver adopts into its store, byte for byte, as each task ends.

Where the driver's store is a folder every node sees at the same path, set $BADMINIMA_SHARED_STORE=1: tasks then
train in it directly, so a task that Ray retries after its worker died resumes from the run's last checkpoint
instead of starting over. Every node reads the data sets from the driver's data folder path."""
from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from badminima.core import runtime
from badminima.core.data import images
from badminima.core.jobs import Job, Progress, fail
from badminima.core.store import Store

SHARED = "BADMINIMA_SHARED_STORE"
RETRIES = 3
STOP_SECONDS = 30.0   # how long interrupted tasks have to unwind before they are killed
Files = list[tuple[str, str, dict[str, bytes]]]   # (kind, key, files) of stored results


def _train(job: Job, shared: str | None, *groups: Files) -> Files:
    """On a worker: run the job, in the shared store or in a store of its own seeded with `groups`; the files of
    what it computed (nothing when the store is shared: it is there already)."""
    torch.set_num_threads(1)   # one task a CPU, as the local executor runs one process a core
    if shared is not None:
        job.run(Store(shared))
        return []
    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        seeded = {(kind, key) for group in groups for kind, key, files in group if store.adopt(kind, key, files)}
        job.run(store)
        return [(e.kind, e.key, store.files(e.kind, e.key)) for e in store.entries()
                if e.status == "complete" and (e.kind, e.key) not in seeded]


def _stored_inputs(job: Job, store: Store) -> Files:
    keys = [(kind, store.key(config)) for kind, config in job.inputs if store.has(kind, config)]
    return [(kind, key, store.files(kind, key)) for kind, key in keys]


def run(jobs: list[Job], todo: list[int], store: Store, address: str | None, bar: Progress) -> None:
    """Run jobs `todo` (each after the jobs it needs, which come before it in the list) on the Ray cluster at
    `address` ("auto": the running one; None: start one on this machine) and store their results."""
    import ray

    owned = not ray.is_initialized()   # a cluster this call started (address None) ends with it if interrupted
    if owned:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 1))
    shared = str(store.root.resolve()) if os.environ.get(SHARED) else None
    # Workers read data where the driver does (a worker of a cluster started by `ray start` has its own cwd).
    # And compute with this process's kernels (a cluster's workers do not inherit its environment).
    kernels = {name: os.environ[name] for name in (*runtime.KERNELS, runtime.FAST_KERNELS) if name in os.environ}
    env = {"env_vars": {"BADMINIMA_DATA": str(images.data_folder().resolve()), **kernels}}
    task = ray.remote(num_cpus=1, max_retries=RETRIES, runtime_env=env)(_train)
    refs: dict[int, Any] = {}
    for i in todo:
        job = jobs[i]
        assert all(j < i for j in job.after), "a job comes after the jobs it needs"
        sent = [] if shared else [ray.put(_stored_inputs(job, store))]
        needs = [refs[j] for j in sorted(job.after) if j in refs]
        gpus = job.gpus if resources.get("GPU", 0) else 0
        refs[i] = task.options(num_gpus=gpus).remote(job, shared, *sent, *needs)
    index = {ref: i for i, ref in refs.items()}
    errors: dict[int, BaseException] = {}

    def show_running() -> None:
        # Ray runs a task once its inputs exist and a CPU is free; count as running the ready ones that fit.
        ready = [i for i in todo if i not in bar.done and i not in bar.failed
                 and all(j in bar.done for j in jobs[i].after if j in refs)]
        bar.running = set(ready[:slots])
        bar.show()

    pending = list(refs.values())
    show_running()
    try:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            i = index[finished[0]]
            try:
                for kind, key, files in ray.get(finished[0]):
                    store.adopt(kind, key, files)
            except Exception as err:   # the task failed after its retries (or a job it needs did)
                errors[i] = err
            bar.finish(i, ok=i not in errors)
            show_running()
    except BaseException:
        _cancel(pending, owned and address is None)
        raise
    fail(errors, jobs, bar)


def _cancel(pending: list, shutdown: bool) -> None:
    """Stop the tasks not yet finished: a running one gets a KeyboardInterrupt (so it releases its locks and keeps
    its checkpoints, where the store is shared), then is forced; a cluster the run started is shut down."""
    import ray

    for ref in pending:
        ray.cancel(ref, recursive=True)
    _, unfinished = ray.wait(pending, num_returns=len(pending), timeout=STOP_SECONDS) if pending else ([], [])
    for ref in unfinished:
        ray.cancel(ref, force=True, recursive=True)
    if shutdown:
        ray.shutdown()
