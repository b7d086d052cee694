"""The live page (paper_b/live.py and book/static/live.js): its data decode to the stored runs bit for bit, its
float64 reference is gradient descent on the protocol's loss, and the page's engine, in headless Chromium, trains
as the reference does."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from badminima.book import browser
from badminima.core.models import MLP
from badminima.core.store import Store
from badminima.core.train import TrainConfig, train
from badminima.paper_b import live, runs
from badminima.paper_b.datasets import problem_of

ROOT = Path(__file__).resolve().parents[1]
WHY_NOT = browser.missing_browser()
CELL = ("circles", 16, 0)   # a smoke cell: data set, width, seed
FITS = ("gaussians", 16, 0)   # one whose runs fit within a few steps: the stopping rule
STEPS, EVERY = 300, 50


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The smoke configuration's page data (its runs trained into a store of the test's own) and a standalone
    page of it beside the script."""
    tmp = tmp_path_factory.mktemp("live")
    store = Store(tmp / "results")
    cfg = live.config_for("smoke")
    data = live.page_data(cfg, store)
    (tmp / "page").mkdir()
    shutil.copy(ROOT / "book" / "static" / "live.js", tmp / "page" / "live.js")
    head = '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
    (tmp / "page" / "index.html").write_text(head + live.page_html(data, script="live.js") + "</body></html>")
    return cfg, store, data, tmp / "page"


def _start(data, start, cell=CELL):
    dataset, width, seed = cell
    return live.state_of(data["cells"][f"{dataset}/{width}/{seed}"]["starts"][start], width)


def _points(data, cell=CELL, labels="y"):
    raw = data["points"][f"{cell[0]}/{cell[2]}"]
    return live.decode(raw["x"]).view(-1, 2), torch.tensor([int(c) for c in raw[labels]])


def test_the_page_starts_from_the_stored_states_and_data_bit_for_bit(page):
    cfg, store, data, _ = page
    dataset, width, seed = CELL
    problem = problem_of(cfg.sweep, dataset)
    i = problem.seeds.index(seed)
    stored = runs.states(problem, width, store)
    repairs = dict(cfg.repairs)
    expected = {live.RANDOM: stored["random init"], live.ADVERSARIAL: stored["adversarial init"],
                **{name: runs.repaired_start(problem, width, r, store) for name, r in repairs.items()}}
    assert data["starts"] == list(expected) and len(repairs) == 2
    for name, state in expected.items():
        got = _start(data, name)
        for key in live.PARAMS:
            assert got[key].dtype == torch.float64
            mine = state[key][i:i + 1]
            assert torch.equal(got[key].float(), mine) and torch.equal(got[key], mine.double())
    x, y = _points(data)
    assert torch.equal(x, problem.data.x[i].double()) and torch.equal(y, problem.data.y[i])
    assert torch.equal(_points(data, labels="y_random")[1], runs.random_labels_of(problem)[i])
    groups = runs.run_problem(problem, width, store)
    outcome = data["cells"][f"{dataset}/{width}/{seed}"]["stored"]
    assert outcome["2"][live.ADVERSARIAL] == {"steps": groups["retrain"].metrics["fit_step"][i],
                                             "test": 100 * groups["retrain"].metrics["test_acc"][i]}
    assert outcome["1"][live.RANDOM]["test"] == 100 * groups["start"].metrics["test_acc"][len(problem.seeds) + i]
    # The repairs chapter stores repaired runs at its own width only: elsewhere the page says so.
    assert all(outcome["2"][name] is None for name in repairs)
    assert data["lr"] == cfg.sweep.lr and data["cap"] == cfg.sweep.max_steps
    assert len(data["seeds"]) == min(live.LIVE_SEEDS, len(cfg.sweep.seeds))


def test_the_reference_is_the_training_loop_in_float64(page):
    """`train` casts the logits to float32 before the loss, so in float64 it agrees with the reference to about
    float32's rounding of the loss gradient (2^-24 relative), carried through a few hundred steps: 1e-5 of the
    weights' size is ample, and a wrong gradient or step would be off by orders more."""
    _, _, data, _ = page
    x, y = _points(data)
    state = _start(data, live.ADVERSARIAL)
    ref = live.reference(state, x, y, data["lr"], STEPS, EVERY)
    net = MLP((2, CELL[1], 1), (0,)).double()
    net.load_state_dict(state)
    run = train(net, (x[None].double(), y[None]), TrainConfig(lr=data["lr"], max_epochs=STEPS), (0,))
    assert run.fit_step == [ref["fit_step"]]
    for key, value in net.state_dict().items():
        scale = float(value.abs().max())
        assert float((value - ref["state"][key]).abs().max()) <= 1e-5 * scale, key
    moved = max(float((ref["state"][k] - state[k]).abs().max()) for k in live.PARAMS)
    assert moved > 1e-3, "the reference trained (it did not stop at its start)"


def _numpy_run(state, x, y, lr, steps):
    """Gradient descent as the reference does it, with every sum in reverse index order (numpy's own products):
    another summation order, to measure how far two float64 orders drift apart."""
    w0, b0 = state["weights.0"][0].numpy().copy(), state["biases.0"][0, 0].numpy().copy()
    w1, b1 = state["weights.1"][0, :, 0].numpy().copy(), float(state["biases.1"].flatten()[0])
    xs, ys = x.numpy()[::-1].copy(), y.double().numpy()[::-1].copy()
    for _ in range(steps):
        a = xs @ w0 + b0
        h = np.maximum(a, 0)
        z = h[:, ::-1] @ w1[::-1] + b1
        g = (1 / (1 + np.exp(-z)) - ys) / len(ys)
        dh = np.outer(g, w1) * (a > 0)
        w0, b0 = w0 - lr * (xs.T @ dh), b0 - lr * dh.sum(0)
        w1, b1 = w1 - lr * (h.T @ g), b1 - lr * g.sum()
    return np.concatenate([w0.flatten(), b0, w1, [b1]])


def _flat(state):
    return torch.cat([state[k].flatten() for k in live.PARAMS]).numpy()


def _bound(data, start, cell=CELL):
    """The page's allowed distance from the reference, in the weights after STEPS steps: 1000 times how far two
    float64 summation orders in Python (torch's and numpy's reversed one) drift apart over the same steps, and at
    least 1000 ulps of the weights' size. Why a margin of 1000: the page sums in a third order, whose drift is of
    the same kind but not the same size; a wrong formula would miss by many orders more (a gradient off by one
    point's share is ~1e-4 here)."""
    x, y = _points(data, cell)
    state = _start(data, start, cell)
    ref = live.reference(state, x, y, data["lr"], STEPS, STEPS)
    other = _numpy_run(state, x, y, data["lr"], STEPS if ref["fit_step"] is None else ref["fit_step"])
    flat = _flat(ref["state"])
    drift = float(np.abs(other - flat).max())
    return ref, 1000 * max(drift, np.finfo(np.float64).eps * float(np.abs(flat).max()))


def _open(browser_, url):
    errors = []
    tab = browser_.new_page(viewport={"width": 1100, "height": 900})
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(url, wait_until="load")
    return tab, errors


@pytest.fixture(scope="module")
def chromium():
    if WHY_NOT is not None:
        pytest.skip(f"no browser: {WHY_NOT}")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser.CHROMIUM, args=browser.CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("how", ["file", "http"])
def test_the_page_trains_as_the_float64_reference(page, chromium, how):
    _, _, data, folder = page
    fitted = []
    with browser.serve(folder) as base:
        url = (folder / "index.html").as_uri() if how == "file" else base + "index.html"
        tab, errors = _open(chromium, url)
        for cell in (CELL, FITS):
            x, y = _points(data, cell)
            for start in (live.RANDOM, live.ADVERSARIAL):
                ref, bound = _bound(data, start, cell)
                traj = live.reference(_start(data, start, cell), x, y, data["lr"], STEPS, EVERY)
                got = tab.evaluate("([c, s, n, e]) => window.badminimaLive.trajectory(c, s, n, e, '2')",
                                   ["/".join(map(str, cell)), start, STEPS, EVERY])
                assert got["step"] == traj["step"] and got["fit_step"] == traj["fit_step"]
                fitted.append(got["fit_step"] is not None)
                assert np.abs(np.array(got["state"]) - _flat(ref["state"])).max() <= bound, start
                # A logit sum_j v_j relu(x W_j + b_j) + c moves by at most 2 p (2|x| + 1) M + 1 times the weights'
                # distance (M: the largest weight): beyond that margin from zero, a point is classified alike; and
                # each point's loss moves by at most its logit's move (|d loss / dz| = |sigmoid(z) - y| <= 1).
                big = float(np.abs(_flat(ref["state"])).max())
                z_tol = bound * (2 * cell[1] * (2 * float(x.abs().max()) + 1) * big + 1)
                assert np.allclose(got["loss"], traj["loss"], rtol=0, atol=z_tol)
                for acc, ref_acc, margin in zip(got["train_acc"], traj["train_acc"], traj["margin"]):
                    assert acc == ref_acc or margin <= z_tol
        tab.close()
    assert any(fitted) and not all(fitted), "both stopping rules were exercised: zero training error, the steps"
    assert errors == []


def _pixels(tab, panel=0, canvas=0):
    return tab.evaluate("([p, c]) => { const el = document.querySelectorAll('.bl-panel')[p]"
                        ".querySelectorAll('canvas')[c];"
                        " return Array.from(el.getContext('2d').getImageData(0, 0, el.width, el.height).data); }",
                        [panel, canvas])


def test_the_page_draws_reacts_and_runs_from_the_keyboard(page, chromium):
    _, _, data, folder = page
    tab, errors = _open(chromium, (folder / "index.html").as_uri())
    first = np.array(_pixels(tab)).reshape(-1, 4)
    assert len({tuple(px) for px in first[::7]}) > 20, "the boundary canvas is drawn, not blank"
    assert np.array(_pixels(tab, canvas=1)).reshape(-1, 4)[:, :3].min() < 100, "the curves are drawn"
    selects = tab.locator(".bl-controls select")
    shown = tab.evaluate("window.badminimaLive.panels()[0].cell").split("/")[0]
    other = next(d for d, _ in data["datasets"] if d != shown)
    selects.nth(0).select_option(other)
    moved = np.array(_pixels(tab)).reshape(-1, 4)
    assert tab.evaluate("window.badminimaLive.panels()[0].cell").startswith(other + "/")
    assert (moved != first).any(), "another data set: other points"
    tab.locator(".bl-panel select").nth(0).select_option(live.ADVERSARIAL)
    adversarial = np.array(_pixels(tab)).reshape(-1, 4)
    assert (adversarial != moved).any(), "another start: another initial boundary"
    run = tab.get_by_role("button", name="Run")
    run.focus()
    assert tab.evaluate("document.activeElement.textContent") == "Run"
    tab.keyboard.press("Enter")
    tab.wait_for_function("window.badminimaLive.panels().every(p => p.step > 0)", timeout=10_000)
    tab.close()
    assert errors == []
