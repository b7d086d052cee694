"""Paper B's small nets trained live in the reader's browser (book/static/live.js), no kernel needed: the page's
data from the stored runs (each cell's points, labels and start states, and the stored runs' outcomes), a float64
reference trajectory the page is tested against, and the HTML fragment the chapter displays.

Every float goes to the page as float64 little-endian bytes in base64, so the page starts from exactly the stored
float32 weights and data (a float32 value is exact in float64), and the engine trains in float64 (JS numbers)."""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from badminima.beyond import protocol as beyond_protocol
from badminima.beyond import repairs as beyond_repairs
from badminima.core.config import check_choice
from badminima.core.metrics import predict
from badminima.core.repairs import Repair
from badminima.core.store import NotStored, ReadOnlyStore, Store
from badminima.paper_b import protocol, runs
from badminima.paper_b.datasets import problem_of

Tensor = torch.Tensor

# The 2-D sets of the sweep: the nets the page can train (vectorized MNIST's 784 inputs would not draw a boundary).
DATASETS = tuple(d for d in protocol.group("sweep") if d in protocol.TOY)
# The first seeds of the sweep. Why three: each seed adds about 0.4 MB at the cpu scale (its states at four widths
# and four starts on three data sets, and its 1,100 points each), so three keep the page at 1.25 MB (it opens from
# disk, script started, in about 0.4 s in headless Chromium here), and three are enough to see that seeds differ.
LIVE_SEEDS = 3
# A state as the page reads it: these entries of the MLP's state, each flattened in torch's (row-major) order.
PARAMS = ("weights.0", "biases.0", "weights.1", "biases.1")
RANDOM, ADVERSARIAL = "random", "adversarial"
# When the page's run and the stored one agree: both fitted within this fraction of each other's steps (or both
# hit the cap), and their test accuracies within this many points. Why not exact: the stored runs are float32, the
# page float64, so their weights part by rounding from the first step and, over long runs, by chaos.
AGREE_STEPS = 0.01
AGREE_POINTS = 1.0
SCRIPT = "../../live.js"   # the engine, from a chapter's page (book/chapters/*.html; _config.yml's html_extra_path)
ENGINE = Path("book") / "static" / "live.js"   # the script, in the book's root (a chapter's working folder)


@dataclass(frozen=True)
class LiveConfig:
    sweep: protocol.WidthsConfig          # the widths chapter's runs on the 2-D sets, whose cells the page shows
    repairs: tuple[tuple[str, Repair], ...]   # the repairs chapter's repairs the page offers as starts, by name


def config_for(scale: str, **overrides) -> LiveConfig:
    """The page's cells at a scale: the widths chapter's configuration (with `overrides`) on the 2-D sets."""
    sweep = protocol.config_for(scale, **{"datasets": DATASETS, **overrides})
    for name in sweep.datasets:   # the sweep checked the list; the page draws boundaries, so 2-D sets only
        check_choice("dataset", name, DATASETS)
    return LiveConfig(sweep, _shown_repairs(beyond_repairs.net_repairs(beyond_protocol.repairs_config_for(scale))))


def _shown_repairs(repairs: dict[str, Repair]) -> tuple[tuple[str, Repair], ...]:
    """The readout reset and the first shrink and perturb that perturbs: one repair of each kind that needs no
    warm-up (a warm-up is training at another step size, which the page's phase 2 would not show); every further
    one would add a fifth to the page."""
    reset = [(n, r) for n, r in repairs.items() if r.reset_last and not r.warm_epochs]
    perturb = [(n, r) for n, r in repairs.items() if r.perturb and not r.reset_last and not r.warm_epochs]
    return tuple(reset[:1] + perturb[:1])


def encode(t: Tensor) -> str:
    """Float64 little-endian bytes, base64: exact for float32 and float64 values."""
    return base64.b64encode(t.detach().to(torch.float64).contiguous().numpy().astype("<f8").tobytes()).decode()


def _labels(y: Tensor) -> str:
    return "".join(str(int(v)) for v in y)


def _state(state: dict[str, Tensor], member: int) -> str:
    return encode(torch.cat([state[name][member].flatten() for name in PARAMS]))


def _outcome(metrics: dict, member: int) -> dict:
    """A stored run's steps to zero training error (None: it hit the cap) and test accuracy (%)."""
    return {"steps": metrics["fit_step"][member], "test": 100 * metrics["test_acc"][member]}


def _repaired(problem, width: int, repair: Repair, store: Store) -> tuple[dict[str, Tensor], dict | None]:
    """The repaired start of every seed, and its stored run's metrics (None where the repairs chapter did not store
    one: the page never trains Python runs)."""
    try:
        metrics = runs.run_repaired(problem, width, repair, ReadOnlyStore(store.root)).metrics
    except NotStored:
        metrics = None
    return runs.repaired_start(problem, width, repair, store), metrics


def _cells(cfg: LiveConfig, dataset: str, store: Store) -> tuple[dict, dict]:
    """One data set's points per seed and its cells (width/seed): start states and stored outcomes."""
    problem = problem_of(cfg.sweep, dataset)
    seeds, k = problem.seeds[:LIVE_SEEDS], len(problem.seeds)
    data, random_labels = problem.data, runs.random_labels_of(problem)
    points = {}
    for i, seed in enumerate(seeds):
        d = i if data.x.shape[0] > 1 else 0   # one draw per seed, or one shared draw
        points[f"{dataset}/{seed}"] = {"x": encode(data.x[d]), "y": _labels(data.y[d]),
                                       "x_test": encode(data.x_test[d]), "y_test": _labels(data.y_test[d]),
                                       "y_random": _labels(random_labels[i])}
    cells = {}
    for width in cfg.sweep.widths:
        states = runs.states(problem, width, store)
        groups = runs.run_problem(problem, width, store)
        starts = {RANDOM: states["random init"], ADVERSARIAL: states["adversarial init"]}
        phase2 = {RANDOM: groups["start"].metrics, ADVERSARIAL: groups["retrain"].metrics}
        for name, repair in cfg.repairs:
            starts[name], phase2[name] = _repaired(problem, width, repair, store)
        for i, seed in enumerate(seeds):
            # Phase 1 is stored from the random init on the random labels (members k .. 2k-1 of the start group).
            cells[f"{dataset}/{width}/{seed}"] = {
                "starts": {name: _state(s, i) for name, s in starts.items()},
                "stored": {"2": {name: None if m is None else _outcome(m, i) for name, m in phase2.items()},
                           "1": {RANDOM: _outcome(groups["start"].metrics, k + i)}}}
    return points, cells


def page_data(cfg: LiveConfig, store: Store | None = None) -> dict:
    """Everything the page shows, from the stored runs (trained first where missing, as the widths chapter would)."""
    store = store or Store()
    points, cells = {}, {}
    for dataset in cfg.sweep.datasets:
        p, c = _cells(cfg, dataset, store)
        points.update(p)
        cells.update(c)
    s = cfg.sweep
    return {"lr": s.lr, "cap": s.max_steps, "widths": list(s.widths), "seeds": list(s.seeds[:LIVE_SEEDS]),
            "datasets": [[d, protocol.REGISTRY[d].name] for d in s.datasets],
            "starts": [RANDOM, ADVERSARIAL] + [name for name, _ in cfg.repairs], "params": list(PARAMS),
            "agree": {"steps": AGREE_STEPS, "points": AGREE_POINTS}, "points": points, "cells": cells}


def describe(cfg: LiveConfig, data: dict, shown: str, root: Path = Path(".")) -> str:
    """The page's cells, settings and size, for the chapter's text."""
    s, cells = cfg.sweep, data["cells"].values()
    stored = sum(o is not None for c in cells for o in c["stored"]["2"].values())
    return (f"Data sets {', '.join(name for _, name in data['datasets'])}; widths {', '.join(map(str, s.widths))}; "
            f"seeds {', '.join(map(str, data['seeds']))} (the first {len(data['seeds'])} of the sweep's "
            f"{len(s.seeds)}); starts {', '.join(data['starts'])}. Phase 2: step {s.lr:g}, to zero training error "
            f"or {s.max_steps:,} steps. A run agrees with the stored one when both fitted within "
            f"{AGREE_STEPS:.0%} of each other's steps (or both hit the cap) and their test accuracies are within "
            f"{AGREE_POINTS:g} point; {stored} of the {len(data['cells']) * len(data['starts'])} cell starts have a "
            f"stored run. The page carries {len(shown) / 1e6:.2f} MB of data and markup, and a script of "
            f"{(Path(root) / ENGINE).stat().st_size / 1e3:.0f} kB.")


def page_html(data: dict, script: str = SCRIPT, element: str = "badminima-live") -> str:
    """The chapter's fragment: the data inline (a page opened from file:// may not fetch files), the root element
    the engine fills, and the engine as a classic script (file:// pages may not load modules)."""
    # "</" would end the script element early; JSON allows "<\/" for it.
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (f'<script type="application/json" id="{element}-data">{text}</script>\n'
            f'<div class="badminima-live" id="{element}" data-source="{element}-data">'
            f'<p>Loading the live trainer ({len(text) / 1e6:.1f} MB of data)...</p></div>\n'
            f'<script src="{html.escape(script)}"></script>\n')


def decode(text: str) -> Tensor:
    """The inverse of `encode`."""
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.float64).clone()


def state_of(encoded: str, width: int) -> dict[str, Tensor]:
    """A page state back as one member's MLP state (float64), for the reference and the tests."""
    flat, out, at = decode(encoded), {}, 0
    shapes = {"weights.0": (1, 2, width), "biases.0": (1, 1, width), "weights.1": (1, width, 1), "biases.1": (1, 1, 1)}
    for name in PARAMS:
        size = torch.Size(shapes[name]).numel()
        out[name] = flat[at:at + size].view(shapes[name])
        at += size
    return out


def reference(state: dict[str, Tensor], x: Tensor, y: Tensor, lr: float, steps: int, every: int) -> dict:
    """Full-batch gradient descent in float64 on the protocol's loss from `state` (one member), stopped at zero
    training error (checked from step 1, as `train` does) or after `steps`: loss, training accuracy and the
    smallest |logit| at every `every`-th step and the last, and the final state.

    Why not core/train.py's `train` on a float64 MLP: it casts the logits to float32 before the loss (and
    loss_per_member's float labels make the loss float32), so its run would be float32 in the loss's gradient."""
    net = runs.net_of((x.shape[-1], state["weights.0"].shape[-1], 1), (0,), None).double()
    net.load_state_dict({k: v.to(torch.float64) for k, v in state.items()})
    x64, y64 = x.to(torch.float64)[None], y.to(torch.float64)[None]
    params = list(net.parameters())
    out = {"step": [], "loss": [], "train_acc": [], "margin": [], "fit_step": None}
    for step in range(steps + 1):
        z = net(x64)[..., 0]
        loss = F.binary_cross_entropy_with_logits(z, y64)
        right = (predict(z.detach()[..., None]) == y[None]).double()
        fitted = step >= 1 and bool(right.all())
        if step % every == 0 or fitted or step == steps:
            out["step"].append(step)
            out["loss"].append(float(loss.detach()))
            out["train_acc"].append(float(right.mean()))
            out["margin"].append(float(z.detach().abs().min()))
        if fitted or step == steps:
            out["fit_step"] = step if fitted else None
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)
    out["state"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return out
