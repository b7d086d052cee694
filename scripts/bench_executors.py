"""Wall time of Paper A's main grid trained from an empty store by the local executor (one process per core) and by
a Ray cluster of as many workers started on this machine, side by side, with their ratio. Each executor fills its
own temporary store.

    .venv/bin/python scripts/bench_executors.py [--scale smoke] [--models resnet18] [--seeds 0 1]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from badminima.core.store import Store
from badminima.paper_a import experiments, protocol


def seconds(cells: list, executor: str) -> float:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        experiments.train_all(cells, Store(root), executor=executor)
        return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    args = parser.parse_args()
    cfg = protocol.config_for(args.scale, models=args.models, seeds=args.seeds)
    cells = experiments.main_grid(cfg)
    import ray

    workers = os.cpu_count() or 1
    local = seconds(cells, "local")
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - start
    on_ray = seconds(cells, "ray")
    ray.shutdown()
    print(f"{args.scale} main grid, {len(cells)} runs of {', '.join(cfg.models)}: local ({workers} processes) "
          f"{local:.1f} s, Ray ({workers} workers) {on_ray:.1f} s + {started:.1f} s to start the cluster; "
          f"Ray / local = {on_ray / local:.2f}")
