"""Paper B's phase 1 per 2-D data set and width at a given cap: how many seeds fit their random labels (zero
training error), after how many steps, at what cost. The pilot behind the `cpu` scale's cap.

It trains only the "start" group (Exp 1 and phase 1, which the book trains together), in a store of its own
(--results); it reads phase 1's fit and cost, never a claim's outcome.

    python scripts/pilot_paper_b_phase1.py --datasets gaussians circles --widths 100 500 --cap 1000000 --results /tmp/p
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from badminima.core.store import Store
from badminima.paper_b import experiments, protocol


def pilot(dataset: str, width: int, cap: int, seeds: list[int], store: Store) -> dict:
    problem = experiments.problem_of(protocol.config_for("cpu", max_steps=cap, seeds=tuple(seeds)), dataset)
    start = time.perf_counter()
    metrics = experiments.run_start(problem, width, store).metrics
    seconds = time.perf_counter() - start
    k = len(seeds)
    steps = metrics["fit_step"][k:]
    fitted = sorted(s for s in steps if s is not None)
    return {"dataset": dataset, "width": width, "cap": cap, "seeds": seeds, "fitted": len(fitted),
            "median steps to fit": statistics.median(fitted) if fitted else None, "fit steps": steps,
            "train acc %": [round(100 * a, 1) for a in metrics["train_acc"][k:]],
            "exp 1 fitted": sum(s is not None for s in metrics["fit_step"][:k]), "seconds": round(seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(protocol.BOUNDARY_DATASETS), choices=list(protocol.TOY))
    p.add_argument("--widths", nargs="+", type=int, default=list(protocol.WidthsConfig.widths))
    p.add_argument("--cap", type=int, default=1_000_000)
    p.add_argument("--seeds", nargs="+", type=int, default=list(protocol.WidthsConfig.seeds))
    p.add_argument("--results", type=Path, required=True, help="a store of the pilot's own")
    p.add_argument("--json", type=Path, help="append each setting's row to this file (one JSON object a line)")
    args = p.parse_args()
    store = Store(args.results)
    for dataset in args.datasets:
        for width in args.widths:
            row = pilot(dataset, width, args.cap, args.seeds, store)
            print(json.dumps(row), flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
