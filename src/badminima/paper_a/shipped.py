"""Results that travel with the repository: Paper A's main grid trained on a machine the reader may not have (a GPU),
kept as tables (no weights) with their provenance, so the chapters can show them beside their own runs.

    python -m badminima.paper_a.shipped --scale gpu --seconds 240 [--results DIR] [--rates rates.json]

trains the scale's main grid into the result store until `--seconds` have passed (a job that would start after
that is left out, and what finished is kept), then writes under shipped/paper_a/<scale>/: runs.csv (one row per
run), curves.csv (per epoch), distances.csv (Table 1 per seed) and provenance.json (commit, device, torch and CUDA
versions, date, wall time, runs finished). It needs torch, numpy, pandas and tqdm only (no notebook stack), so it
runs where the device check runs."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import torch

from badminima.core.store import Store
from badminima.paper_a import experiments, protocol
from badminima.paper_a import runs as image_runs

ROOT = Path(__file__).resolve().parents[3] / "shipped" / "paper_a"
CIFAR10_TRAIN = 50_000   # the paper-scale projection's training set


def folder(scale: str) -> Path:
    return ROOT / scale


def commit() -> str:
    """The checkout's commit: from git where there is one, else $BADMINIMA_COMMIT (a copied tree has no .git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=ROOT.parents[1]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("BADMINIMA_COMMIT", "unknown")


def provenance(seconds: float, finished: int, total: int) -> dict:
    cuda = torch.cuda.is_available()
    return {"commit": commit(), "device": torch.cuda.get_device_name() if cuda else f"CPU ({platform.processor()})",
            "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
            "date": time.strftime("%Y-%m-%d"), "wall_seconds": round(seconds, 1), "runs_finished": finished,
            "runs_in_grid": total}


def train_until(cells: list[experiments.Cell], store: Store, deadline: float) -> None:
    """Train the grid's missing runs job by job (seeds packed) while time is left; a started job runs to its end."""
    for job in experiments.jobs(experiments.missing(cells, store), store):
        if time.time() >= deadline:
            return
        job.run(store)


def stored_cells(cells: list[experiments.Cell], store: Store) -> list[experiments.Cell]:
    return [(labels, run) for labels, run in cells if store.path("image", run).exists()]


def export(cfg: protocol.PaperAConfig, store: Store, out: Path, meta: dict) -> None:
    """The main grid's finished runs as tables, and Table 1 for the seeds whose four runs all finished."""
    cells = stored_cells(experiments.main_grid(cfg), store)
    out.mkdir(parents=True, exist_ok=True)
    experiments.runs_table(cells, store).to_csv(out / "runs.csv", index=False)
    experiments.curves(cells, store).to_csv(out / "curves.csv", index=False)
    runs_of = Counter((labels["model"], labels["seed"]) for labels, _ in cells)
    complete = {key for key, count in runs_of.items() if count == 4}   # both inits x vanilla and SOTA
    models = tuple(m for m in cfg.models if any(m == c[0] for c in complete))
    seeds = tuple(s for s in cfg.seeds if all((m, s) in complete for m in models))
    if models and seeds:
        partial = dataclasses.replace(cfg, models=models, seeds=seeds)
        experiments.distances(partial, store).to_csv(out / "distances.csv", index=False)
    (out / "provenance.json").write_text(json.dumps({**meta, "scale_config": repr(cfg)}, indent=1) + "\n")


def load(scale: str, root: Path | None = None) -> dict | None:
    """The shipped tables of a scale (runs, curves, distances when present) and their provenance, or None."""
    base = (root or ROOT) / scale
    if not (base / "provenance.json").exists():
        return None
    found = {"provenance": json.loads((base / "provenance.json").read_text())}
    for name in ("runs", "curves", "distances"):
        path = base / f"{name}.csv"
        found[name] = pd.read_csv(path) if path.exists() else None
    return found


def label(shipped: dict) -> str:
    p = shipped["provenance"]
    return (f"measured on {p['device']}, {p['date']}, commit {p['commit']} (torch {p['torch']}"
            + (f", CUDA {p['cuda']}" if p.get("cuda") else "") + f"; {p['runs_finished']} of {p['runs_in_grid']} "
            f"runs finished in {p['wall_seconds']:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="gpu", choices=sorted(protocol.SCALES))
    parser.add_argument("--seconds", type=float, default=240.0, help="start no job after this many seconds")
    parser.add_argument("--results", default=None, help="result store (default: $BADMINIMA_RESULTS or results/)")
    parser.add_argument("--out", default=None, help="where the tables go (default: shipped/paper_a/<scale>/)")
    parser.add_argument("--rates", default=None,
                        help="a JSON {model: training images/s} measured here, to print the projected time")
    args = parser.parse_args()
    cfg = protocol.config_for(args.scale)
    if args.rates:
        rates = json.loads(Path(args.rates).read_text())
        paper_cfg = protocol.config_for("paper")
        unmeasured = sorted(set(cfg.models + paper_cfg.models) - set(rates))
        if unmeasured:
            print(f"no projection: no images/s measured for {', '.join(unmeasured)}", flush=True)
        else:
            ours = protocol.projected_seconds(cfg, rates, len(image_runs.prepare(image_runs.DataSpec(
                cfg.dataset, cfg.per_class, cfg.test_size), torch.device("cpu")).y_train[0]))
            paper = protocol.projected_seconds(paper_cfg, rates, CIFAR10_TRAIN)
            print(f"projected at the measured images/s, one run at a time, every run to its cap: the {args.scale} "
                  f"scale's main grid {ours:.0f} s; the paper scale's (CIFAR-10, 350 epochs, R = 10) "
                  f"{paper / 3600:.0f} GPU-hours", flush=True)
    store = Store(args.results)
    start = time.time()
    cells = experiments.main_grid(cfg)
    train_until(cells, store, start + args.seconds)
    wall = time.time() - start
    finished = len(stored_cells(cells, store))
    export(cfg, store, Path(args.out) if args.out else folder(args.scale), provenance(wall, finished, len(cells)))
    print(f"{finished} of {len(cells)} runs finished in {wall:.0f} s; tables in "
          f"{args.out or folder(args.scale)}", flush=True)


if __name__ == "__main__":
    main()
