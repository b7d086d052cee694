"""Paper A's grid on a Ray cluster. Each job of experiments.jobs (phase 1 of some seeds, or runs with their seeds
packed) is a Ray task that trains in a result store of its own on the worker and returns what it computed, so the
workers share no file system with the driver; the driver writes the results into its store. A phase-2 task is
given the phase-1 results of its seeds (as Ray object references: it starts once they exist), so a task waits for
its own dependencies only. Ray retries a task whose worker died."""
from __future__ import annotations

import tempfile
from typing import Any

import torch
from tqdm.auto import tqdm

from badminima.core.data import images
from badminima.core.store import Store, Weights
from badminima.paper_a import runs as image_runs
from badminima.paper_a.runs import ImageRun

Result = tuple[dict, Weights]   # (metrics, weights) of one stored result


def _what(job: Any) -> tuple[str, list]:
    """The store kind and the configurations of what a job computes."""
    if job.phase1:
        return "adversarial", [image_runs.phase1_key(r) for r in job.runs]
    return "image", list(job.runs)


def _put(store: Store, kind: str, configs: list, results: list[Result], dataset: str) -> None:
    store.load_or_run_many(kind, configs, lambda work, todo: [results[i] for i in todo],
                           data=images.fingerprint(dataset))


def _phase1_of(runs: list[ImageRun]) -> list[ImageRun]:
    return [r for r in runs if r.adversarial is not None]


def _train(job: Any, picks: list[tuple[int, int]], *groups: list[Result]) -> list[Result]:
    """On a worker: the job's results, trained in a store of its own seeded with the phase-1 results it needs,
    member k of group g for each (g, k) of `picks` (a group: what one phase-1 task returned, or one stored
    result)."""
    torch.set_num_threads(1)   # one task a CPU, as the local executor runs one process a core
    from badminima.paper_a.experiments import run_job

    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        needs = _phase1_of(job.runs) if not job.phase1 else []
        if needs:
            _put(store, "adversarial", [image_runs.phase1_key(r) for r in needs], [groups[g][k] for g, k in picks],
                 needs[0].data.dataset)
        run_job(job, store)
        kind, configs = _what(job)
        return [(s.metrics, s.weights) for s in (store.load(kind, c) for c in configs)]


def train(todo: list, store: Store, address: str | None, gpus_per_task: float | None = None,
          progress: bool = False) -> None:
    """Run experiments.jobs' list on the Ray cluster at `address` ("auto": a running one; None: start one on this
    machine) and store every result on the driver. A phase-2 task gets its seeds' phase-1 results as arguments:
    references to the phase-1 tasks of this grid (Ray starts it once those have run) or, for seeds stored
    before, the stored results. Each task asks for one CPU and `gpus_per_task` GPUs (default: one where the
    cluster has GPUs, else none; a fraction lets small runs share one)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    if gpus_per_task is None:
        gpus_per_task = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_task, max_retries=3)(_train)
    refs: list[Any] = []
    for job in todo:
        groups: list[Any] = []
        picks = []
        for r in ([] if job.phase1 else _phase1_of(job.runs)):
            key = image_runs.phase1_key(r)
            owner = next(((j, k) for j in sorted(job.after) for k, p in enumerate(todo[j].runs)
                          if image_runs.phase1_key(p) == key), None)
            if owner is None:
                stored = image_runs.adversarial_init(r, store, progress=False)
                groups.append(ray.put([(stored.metrics, stored.weights)]))
                picks.append((len(groups) - 1, 0))
            else:
                groups.append(refs[owner[0]])
                picks.append((len(groups) - 1, owner[1]))
        refs.append(task.remote(job, picks, *groups))
    # Each job's results are stored as soon as it finishes, so a driver stopped midway keeps what was done.
    index = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    with tqdm(total=len(refs), desc="Ray jobs", unit="job", disable=not progress) as bar:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            job = todo[index[finished[0]]]
            kind, configs = _what(job)
            _put(store, kind, configs, ray.get(finished[0]), job.runs[0].data.dataset)
            bar.update(1)
            bar.set_postfix(waiting_or_running=len(pending), refresh=False)
