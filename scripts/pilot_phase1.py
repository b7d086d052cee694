"""Phase 1's fit and cost per model under candidate cpu settings: the pilot behind Paper A's cpu defaults.

It looks only at Algorithm 1 itself (whether the random labels of C are fitted to 99.99%, after how many epochs,
at what cost in images trained), never at phase 2 or any claim's outcome, so the setting it picks cannot lean
toward a verdict. Every candidate runs in a store of its own (--results), so nothing enters the book's store.

    python scripts/pilot_phase1.py --models vgg16 resnet50 --R 1 2 --phase1-lr 0.1 0.01 --cap 60 --seeds 0 1
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from badminima.core.store import Store
from badminima.paper_a import protocol
from badminima.paper_a.runs import adversarial_inits


def pilot(model: str, R: int, lr: float, cap: int, width: float | None, seeds: list[int], store: Store) -> dict:
    """Phase 1 of one setting for every seed (packed, as the book trains them): fit count, epochs, cost."""
    per_model = {model: {"width": width}} if width else None
    cfg = protocol.config_for("cpu", models=(model,), R=R, phase1_lr=lr, phase1_epochs=cap,
                              seeds=tuple(seeds), per_model=per_model)
    runs = [protocol.vanilla(cfg, model, s, "adversarial") for s in seeds]
    start = time.perf_counter()
    stored = adversarial_inits(runs, store, progress=False)
    seconds = time.perf_counter() - start
    fit = [s.metrics["fit_epoch"][0] for s in stored]
    epochs = [e if e is not None else cap for e in fit]
    c_size = R * (cfg.per_class or 0) * 10
    return {"model": model, "width": protocol.model_width(cfg, model), "R": R, "phase1_lr": lr, "cap": cap,
            "seeds": seeds, "fitted": sum(e is not None for e in fit), "fit_epoch": fit,
            "best_acc": [round(s.metrics["best_train_acc"], 4) for s in stored],
            "images_trained": c_size * sum(epochs), "seconds": round(seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["vgg16", "resnet18", "resnet50", "densenet40"])
    p.add_argument("--R", nargs="+", type=int, default=[4])
    p.add_argument("--phase1-lr", nargs="+", type=float, default=[0.1])
    p.add_argument("--width", nargs="+", type=float, default=[0.0], help="0: the cpu scale's width for the model")
    p.add_argument("--cap", type=int, default=60)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--results", type=Path, required=True, help="a store of the pilot's own")
    p.add_argument("--json", type=Path, help="append each setting's row to this file (one JSON object a line)")
    args = p.parse_args()
    store = Store(args.results)
    for model, R, lr, width in itertools.product(args.models, args.R, args.phase1_lr, args.width):
        row = pilot(model, R, lr, args.cap, width or None, args.seeds, store)
        print(json.dumps(row), flush=True)
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
