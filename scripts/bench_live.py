"""The live page's speed (book/static/live.js in headless Chromium) beside the library's fast path
(core/fastmlp.train_mlp, float32, one member) on the same data, width and start, on this machine: steps per second
at each width of the sweep, and how long the slowest adversarial-start cell takes to finish in the page. Both train
phase 1 (the random labels) from the random init, which runs on without fitting for far longer than a measurement.
The load average is printed beside the figures: the machine may be shared.

    BADMINIMA_RESULTS=/path/to/a/cpu/store .venv/bin/python scripts/bench_live.py [--scale cpu] [--seconds 3]
                                                                                  [--longest]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from badminima.book import browser
from badminima.core import fastmlp
from badminima.core.models import MLP
from badminima.core.store import ReadOnlyStore, default_root
from badminima.core.train import TrainConfig
from badminima.paper_b import live, runs

ROOT = Path(__file__).resolve().parents[1]


def page_speed(tab, cell: str, seconds: float) -> float:
    return tab.evaluate("([c, s]) => window.badminimaLive.speed(c, 'random', s)", [cell, seconds])


def fast_speed(data: dict, cell: str, seconds: float) -> float:
    """train_mlp's steps per second on the cell's random-label phase 1 from its random init, timed over at least
    `seconds` (after a first run that compiles its loop)."""
    dataset, width, seed = cell.split("/")
    raw = data["points"][f"{dataset}/{seed}"]
    x = live.decode(raw["x"]).view(1, -1, 2).float()
    y = torch.tensor([[int(c) for c in raw["y_random"]]])
    state = {k: v.float() for k, v in live.state_of(data["cells"][cell]["starts"]["random"], int(width)).items()}
    steps, elapsed = 10, 0.0   # the first run compiles the loop: it is not timed
    with runs.cpu_settings():
        while elapsed < seconds or steps <= 40:
            model = MLP((2, int(width), 1), (int(seed),))
            model.load_state_dict(state)
            t0 = time.perf_counter()
            run = fastmlp.train_mlp(model, (x, y), TrainConfig(lr=data["lr"], max_epochs=steps), (int(seed),),
                                    history_every=frozenset(), device=torch.device("cpu"))
            elapsed = time.perf_counter() - t0
            steps *= 4
    return run.steps / elapsed


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def longest(tab, data: dict) -> tuple[str, float, int]:
    """The adversarial-start cell whose stored Exp 2 run took the most steps times width, run in the page's own
    interface as it opens (random start on the left, adversarial on the right), at the fastest speed, until the
    adversarial panel stops: its name, seconds and steps."""
    cells = data["cells"]
    cost = lambda k: (cells[k]["stored"]["2"]["adversarial"]["steps"] or data["cap"]) * int(k.split("/")[1])
    cell = max(cells, key=cost)
    dataset, width, seed = cell.split("/")
    selects = tab.locator(".bl-controls select")
    selects.nth(0).select_option(dataset)
    selects.nth(1).select_option(width)
    selects.nth(2).select_option(seed)
    selects.nth(4).select_option(str(int(1e9)))
    panels = tab.locator(".bl-panel select")
    panels.nth(0).select_option("random")
    panels.nth(1).select_option("adversarial")
    t0 = time.perf_counter()
    tab.get_by_role("button", name="Run").click()
    tab.wait_for_function("window.badminimaLive.panels()[1].done", timeout=0, polling=1000)
    return cell, time.perf_counter() - t0, tab.evaluate("window.badminimaLive.panels()[1].step")


def agreement(tab, data: dict, most: int) -> pd.DataFrame:
    """Every cell and start whose stored phase-2 run stopped within `most` steps (fitted, or the cap), run to its
    end by the page's engine: its steps and test accuracy beside the stored run's, and whether they agree by the
    page's rule (live.AGREE_STEPS, live.AGREE_POINTS)."""
    rows = []
    for cell, c in data["cells"].items():
        for start, stored in c["stored"]["2"].items():
            if stored is None or (stored["steps"] or data["cap"]) > most:
                continue
            got = tab.evaluate("([c, s, n]) => window.badminimaLive.trajectory(c, s, n, n, '2')",
                               [cell, start, data["cap"]])
            steps, test = got["fit_step"], 100 * got["test_acc"]
            same = (steps is None and stored["steps"] is None) or (
                None not in (steps, stored["steps"])
                and abs(steps - stored["steps"]) <= live.AGREE_STEPS * max(steps, stored["steps"]))
            rows.append({"cell": cell, "start": start, "page steps": steps, "stored steps": stored["steps"],
                         "page test %": round(test, 1), "stored test %": round(stored["test"], 1),
                         "agree": same and abs(test - stored["test"]) <= live.AGREE_POINTS})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0, help="at least this long per measurement")
    parser.add_argument("--dataset", default="spirals", help="whose cells are timed (seed: the page's first)")
    parser.add_argument("--longest", action="store_true", help="also run the slowest adversarial cell to its end")
    parser.add_argument("--agreement", type=int, default=0, metavar="STEPS",
                        help="also run every cell whose stored run stopped within STEPS steps, against the stored run")
    args = parser.parse_args()
    why = browser.missing_browser()
    if why:
        raise SystemExit(f"cannot run the page: {why}")
    from playwright.sync_api import sync_playwright

    data = live.page_data(live.config_for(args.scale), ReadOnlyStore(default_root()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        shutil.copy(ROOT / live.ENGINE, Path(tmp) / "live.js")
        page = Path(tmp) / "index.html"
        page.write_text('<!doctype html><meta charset="utf-8"><body>' + live.page_html(data, script="live.js"))
        chromium = p.chromium.launch(executable_path=browser.CHROMIUM, args=browser.CHROMIUM_ARGS)
        tab = chromium.new_page(viewport={"width": 1100, "height": 900})
        tab.goto(page.as_uri(), wait_until="load")
        for width in data["widths"]:
            cell = f"{args.dataset}/{width}/{data['seeds'][0]}"
            page_steps = page_speed(tab, cell, args.seconds)
            fast = fast_speed(data, cell, args.seconds)
            rows.append({"width p": width, "page steps/s": round(page_steps), "fast path steps/s": round(fast),
                         "page / fast path": round(page_steps / fast, 2), "load average": load()})
        print(f"Scale {args.scale}, {args.dataset} seed {data['seeds'][0]}, phase 1 from the random init; "
              f"Chromium {chromium.version}, torch {torch.__version__} ({torch.get_num_threads()} thread(s))")
        print(pd.DataFrame(rows).to_string(index=False))
        if args.agreement:
            table = agreement(tab, data, args.agreement)
            print(table.to_string(index=False))
            print(f"{int(table['agree'].sum())} of {len(table)} agree (steps within {live.AGREE_STEPS:.0%} or both "
                  f"at the cap, test accuracy within {live.AGREE_POINTS:g} point)")
        if args.longest:
            before = load()
            cell, seconds, steps = longest(tab, data)
            print(f"Slowest adversarial cell {cell}: {steps:,} steps in {seconds:.0f} s in the page (the random start "
                  f"beside it, fastest speed; load average before {before}, after {load()})")
        chromium.close()


if __name__ == "__main__":
    main()
