"""Wall time of one chapter's grid trained from an empty store by the local executor (as the chapter runs it) and by
a Ray cluster of one worker per core started on this machine, side by side, with their ratio. Each executor fills
its own temporary store.

    .venv/bin/python scripts/bench_executors.py --chapter paper_b_widths --scale cpu
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Callable

from badminima.core import grid
from badminima.core.store import Store
from badminima.paper_a import experiments, protocol, sketch
from badminima.paper_b import runs as paper_b_runs
from badminima.paper_b import protocol as paper_b_protocol


def grids(scale: str) -> dict[str, Callable[[Store, str], None]]:
    """Each chapter's grid, as its notebook trains it, on an executor."""
    return {
        "paper_a_training": lambda store, executor: experiments.train_all(
            experiments.main_grid(protocol.config_for(scale)), store, executor=executor),
        "paper_a_sketch": lambda store, executor: grid.run(sketch.jobs(sketch.config_for(scale)), store, executor),
        "paper_b_widths": lambda store, executor: grid.run(
            paper_b_runs.width_jobs(paper_b_protocol.config_for(scale)), store, executor),
        "paper_b_budget": lambda store, executor: grid.run(
            paper_b_runs.budget_jobs(paper_b_protocol.budget_config_for(scale, None, None, None)), store, executor),
    }


def seconds(train: Callable[[Store, str], None], executor: str) -> float:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        train(Store(root), executor)
        return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", default="paper_b_widths", choices=sorted(grids("smoke")))
    parser.add_argument("--scale", default="smoke")
    args = parser.parse_args()
    train = grids(args.scale)[args.chapter]
    import ray

    workers = os.cpu_count() or 1
    local = seconds(train, "local")
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - start
    on_ray = seconds(train, "ray")
    ray.shutdown()
    print(f"{args.chapter} grid at {args.scale}: local {local:.1f} s, Ray ({workers} workers) {on_ray:.1f} s "
          f"+ {started:.1f} s to start the cluster; Ray / local = {on_ray / local:.2f}")
