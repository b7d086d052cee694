"""Fit and cost under candidate cpu settings: the pilots behind both papers' cpu phase-1 settings and Paper A's
phase-2 rate.

They look only at how runs fit their training set, never at a claim's outcome, so the setting they pick cannot lean
toward a verdict: phase 1 itself (whether its random labels are fitted: to 99.99% on Algorithm 1's set C for Paper
A, to zero training error for Paper B; after how many epochs or steps; at what cost), and for Paper A's phase-2
rate the random init alone (vanilla's epochs to 100% training accuracy, SOTA's training accuracy at its end). Every candidate runs in a store of its own
(--results), so nothing enters the book's store. Paper B's pilot trains the "start" group (Exp 1 and phase 1, which
the book trains together).

    python scripts/pilot_fit.py a --models vgg16 resnet50 --R 1 2 --phase1-lr 0.1 0.01 --cap 60 --results /tmp/a
    python scripts/pilot_fit.py a-lr --models vgg16 resnet18 resnet50 --lr 0.1 0.01 --results /tmp/a2
    python scripts/pilot_fit.py b --datasets gaussians circles --widths 100 500 --cap 1000000 --results /tmp/b
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

from badminima.core.store import Store
from badminima.paper_a import protocol as paper_a
from badminima.paper_a.runs import adversarial_inits, run_images
from badminima.paper_b import datasets as paper_b_datasets
from badminima.paper_b import runs as paper_b_runs
from badminima.paper_b import protocol as paper_b


def pilot_a(model: str, R: int, lr: float, cap: int, width: float | None, seeds: list[int], store: Store) -> dict:
    """Algorithm 1 of one setting for every seed (packed, as the book trains them): fit count, epochs, cost."""
    per_model = {model: {"width": width}} if width else None
    cfg = paper_a.config_for("cpu", models=(model,), R=R, phase1_lr=lr, phase1_epochs=cap,
                             seeds=tuple(seeds), per_model=per_model)
    runs = [paper_a.vanilla(cfg, model, s, "adversarial") for s in seeds]
    start = time.perf_counter()
    stored = adversarial_inits(runs, store, progress=False)
    seconds = time.perf_counter() - start
    fit = [s.metrics["fit_epoch"][0] for s in stored]
    epochs = [e if e is not None else cap for e in fit]
    c_size = R * (cfg.per_class or 0) * 10
    return {"model": model, "width": paper_a.model_width(cfg, model), "R": R, "phase1_lr": lr, "cap": cap,
            "seeds": seeds, "fitted": sum(e is not None for e in fit), "fit_epoch": fit,
            "best_acc": [round(s.metrics["best_train_acc"], 4) for s in stored],
            "images_trained": c_size * sum(epochs), "seconds": round(seconds, 1)}


def pilot_a_lr(model: str, lr: float, seeds: list[int], store: Store) -> dict:
    """Phase 2 at one rate from the random init (no adversarial init is trained or read): vanilla's epochs to 100%
    training accuracy (None: its cap) and SOTA's training accuracy after its epochs, per seed."""
    cfg = paper_a.config_for("cpu", models=(model,), lr=lr, seeds=tuple(seeds))
    start = time.perf_counter()
    vanilla = run_images([paper_a.vanilla(cfg, model, s, "random") for s in seeds], store, progress=False)
    sota = run_images([paper_a.sota(cfg, model, s, "random") for s in seeds], store, progress=False)
    return {"model": model, "lr": lr, "seeds": seeds,
            "vanilla fit epoch": [r.metrics["fit_epoch"][0] for r in vanilla],
            "sota train acc %": [round(100 * r.metrics["train_acc"]) for r in sota],
            "seconds": round(time.perf_counter() - start, 1)}


def pilot_b(dataset: str, width: int, cap: int, seeds: list[int], store: Store) -> dict:
    """Paper B's phase 1 on one 2-D data set and width for every seed: fit count, steps, cost."""
    problem = paper_b_datasets.problem_of(paper_b.config_for("cpu", max_steps=cap, seeds=tuple(seeds)), dataset)
    start = time.perf_counter()
    metrics = paper_b_runs.run_start(problem, width, store).metrics
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
    papers = p.add_subparsers(dest="paper", required=True)
    a = papers.add_parser("a", help="Paper A: Algorithm 1 per model")
    a.add_argument("--models", nargs="+", default=list(paper_a.PHASE1_PILOT))
    a.add_argument("--R", nargs="+", type=int, default=[4])
    a.add_argument("--phase1-lr", nargs="+", type=float, default=[paper_a.PHASE1_LR])
    a.add_argument("--width", nargs="+", type=float, default=[0.0], help="0: the cpu scale's width for the model")
    a.add_argument("--cap", type=int, default=60)
    a.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    a_lr = papers.add_parser("a-lr", help="Paper A: phase 2's rate, random init only")
    a_lr.add_argument("--models", nargs="+", default=list(paper_a.PHASE2_PILOT))
    a_lr.add_argument("--lr", nargs="+", type=float, default=[paper_a.PAPER_LR, paper_a.PHASE2_LR])
    a_lr.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    b = papers.add_parser("b", help="Paper B: phase 1 per 2-D data set and width")
    b.add_argument("--datasets", nargs="+", default=list(paper_b.BOUNDARY_DATASETS), choices=list(paper_b.TOY))
    b.add_argument("--widths", nargs="+", type=int, default=list(paper_b.WidthsConfig.widths))
    b.add_argument("--cap", type=int, default=paper_b.WidthsConfig.max_steps)
    b.add_argument("--seeds", nargs="+", type=int, default=list(paper_b.WidthsConfig.seeds))
    for sub in (a, a_lr, b):
        sub.add_argument("--results", type=Path, required=True, help="a store of the pilot's own")
        sub.add_argument("--json", type=Path, help="append each setting's row to this file (one JSON object a line)")
    args = p.parse_args()
    store = Store(args.results)
    if args.paper == "a":
        rows = (pilot_a(model, R, lr, args.cap, width or None, args.seeds, store) for model, R, lr, width in
                itertools.product(args.models, args.R, args.phase1_lr, args.width))
    elif args.paper == "a-lr":
        rows = (pilot_a_lr(model, lr, args.seeds, store) for model, lr in itertools.product(args.models, args.lr))
    else:
        rows = (pilot_b(dataset, width, args.cap, args.seeds, store)
                for dataset, width in itertools.product(args.datasets, args.widths))
    for row in rows:
        print(json.dumps(row), flush=True)
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
