"""Beyond both papers: what makes the adversarial minimum bad, measured on the runs the other chapters stored
(Paper A's image runs, Paper B's width sweeps): sharpness, the straight path from the good minimum to the bad one,
how far test points lie from a flipped prediction, and how far each layer moved. Each measurement is stored once
per run, under the run and the measurement's settings."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from badminima.core import grid, landscape, stats
from badminima.core.metrics import EVAL_CHUNK
from badminima.beyond.protocol import MinimaConfig
from badminima.core.models import MLP
from badminima.core.jobs import Job
from badminima.core.store import Store, Stored
from badminima.paper_a import experiments as paper_a
from badminima.paper_a import runs as image_runs
from badminima.paper_a.runs import ImageRun
from badminima.paper_b import datasets as paper_b_datasets
from badminima.paper_b import runs as paper_b_runs

# Paper A's image runs

def _sets(run: ImageRun) -> tuple[image_runs.Prepared, torch.Tensor, torch.Tensor]:
    data = image_runs.prepare(run.data, torch.device("cpu"))
    shape = (1, -1, 1, 1)
    return data, torch.tensor(data.raw.mean).view(shape), torch.tensor(data.raw.std).view(shape)


def _image_measures(cfg: MinimaConfig, run: ImageRun, store: Store) -> dict:
    stored = image_runs.run_image(run, store, progress=False)
    model = image_runs.load_model(run, stored.weights)
    data, mean, std = _sets(run)
    loss, params = landscape.training_loss(model, data.x_train[0], data.y_train[0])
    top, iters = landscape.top_eigenvalue(loss, params, cfg.hessian_tol, cfg.hessian_cap)
    trace, trace_se = landscape.hessian_trace(loss, params, cfg.hutchinson)
    pixels = data.x_test[0, :cfg.margin_size] * std + mean
    logits_of = lambda z: model((z - mean) / std)
    flips = {name: landscape.flip_epsilon(logits_of, pixels, cfg.eps_max, steps, cfg.bisections, 0.0, 1.0).tolist()
             for name, steps in (("FGSM", 1), ("PGD", cfg.pgd_steps))}
    layers = landscape.layer_distances(image_runs.start_state(run, store), stored.weights)
    # the weight tensors of the convolutions and the classifier (batch norm's scales and shifts left out: their
    # relative distances are of another kind and would interleave with the layers')
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    return {"top eigenvalue": top, "power iterations": iters, "trace": trace, "trace se": trace_se, **flips,
            "layers": {n: layers[n] for n in names if n in layers}}


def _image_key(cfg: MinimaConfig, run: ImageRun) -> dict:
    settings = cfg.settings("hessian_tol", "hessian_cap", "hutchinson", "margin_size", "eps_max", "pgd_steps",
                            "bisections")
    return {"run": run, **settings, "layers": "weight tensors"}


def _image_stored(cfg: MinimaConfig, run: ImageRun, store: Store) -> Stored:
    return store.load_or_run("beyond_minima", _image_key(cfg, run), lambda _: (_image_measures(cfg, run, store), {}))


def image_cells(cfg: MinimaConfig) -> list[paper_a.Cell]:
    return paper_a.main_grid(cfg.paper_a)


def image_measures(cfg: MinimaConfig, store: Store | None = None) -> dict[str, pd.DataFrame]:
    """Per run of Paper A's main grid (the measured models and seeds): {"sharpness": top Hessian eigenvalue and
    trace of the training loss; "flips": the smallest l-infinity perturbation flipping each test image's
    prediction, FGSM and PGD (inf: none up to eps_max); "layers": each convolution's and the classifier's weight
    tensor's distance from the run's start, relative to its size at the start}. Runs missing from the store are trained first."""
    store = store or Store()
    cells = image_cells(cfg)
    paper_a.train_all(cells, store)
    sharp, flips, layers = [], [], []
    for labels, run in cells:
        m = _image_stored(cfg, run, store).metrics
        sharp.append({**labels, **{k: m[k] for k in ("top eigenvalue", "power iterations", "trace", "trace se")}})
        for attack in ("FGSM", "PGD"):
            flips += [{**labels, "attack": attack, "image": i, "epsilon": e} for i, e in enumerate(m[attack])]
        layers += [{**labels, "depth": d, "parameter": n, "distance": v} for d, (n, v) in enumerate(m["layers"].items())]
    return {"sharpness": pd.DataFrame(sharp), "flips": pd.DataFrame(flips), "layers": pd.DataFrame(layers)}


@torch.no_grad()
def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK) -> float:
    return sum(int((model(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).sum()) for i in range(0, len(x), chunk)) / len(x)


def _path(cfg: MinimaConfig, a: ImageRun, b: ImageRun, store: Store) -> dict:
    wa = image_runs.run_image(a, store, progress=False).weights
    wb = image_runs.run_image(b, store, progress=False).weights
    data, _, _ = _sets(a)
    model = image_runs.load_model(a, wa)
    x, y = data.x_train[0], data.y_train[0]
    rows = {"alpha": [], "train loss": [], "train acc": [], "test acc": []}
    for alpha in np.linspace(0, 1, cfg.path_points).tolist():
        model.load_state_dict(landscape.between(wa, wb, alpha))
        landscape.recompute_batch_norm(model, x)
        with torch.no_grad():
            rows["train loss"].append(float(F.cross_entropy(model(x), y)))
        rows["alpha"].append(alpha)
        rows["train acc"].append(_accuracy(model, x, y))
        rows["test acc"].append(_accuracy(model, data.x_test[0], data.y_test[0]))
    return rows


def _path_key(cfg: MinimaConfig, a: ImageRun, b: ImageRun) -> dict:
    return {"from": a, "to": b, "points": cfg.path_points, "batch norm": "re-estimated"}


def _path_stored(cfg: MinimaConfig, a: ImageRun, b: ImageRun, store: Store) -> Stored:
    return store.load_or_run("beyond_path", _path_key(cfg, a, b), lambda _: (_path(cfg, a, b, store), {}))


def _path_pairs(cfg: MinimaConfig) -> list[tuple[tuple, ImageRun, ImageRun]]:
    """((model, seed, recipe), random-init run, its adversarial-init twin) of every measured model, seed and
    recipe."""
    runs = {(l["model"], l["seed"], l["mode"], l["init"]): r for l, r in image_cells(cfg)}
    return [((model, seed, mode), a, runs[(model, seed, mode, "adversarial")])
            for (model, seed, mode, init), a in runs.items() if init == "random"]


def image_paths(cfg: MinimaConfig, store: Store | None = None) -> pd.DataFrame:
    """Along the straight line from the random-init run (alpha 0) to the adversarial-init run (alpha 1) of each
    model, seed and recipe: training loss, training and test accuracy (%), batch-norm statistics re-estimated on
    the training images at each point."""
    store = store or Store()
    paper_a.train_all(image_cells(cfg), store)
    out = []
    for (model, seed, mode), a, b in _path_pairs(cfg):
        m = _path_stored(cfg, a, b, store).metrics
        table = pd.DataFrame(m).assign(model=model, seed=seed, mode=mode)
        out.append(table.assign(**{"train acc": 100 * table["train acc"], "test acc": 100 * table["test acc"]})
                   .rename(columns={"train acc": "train acc %", "test acc": "test acc %"}))
    return pd.concat(out, ignore_index=True)


# Paper B's nets

def _member(state: dict, m: int, sizes: tuple[int, ...]) -> MLP:
    net = MLP(sizes, (0,))
    net.load_state_dict({k: v[m:m + 1] for k, v in state.items()})
    return net


def _layer_moves(start: dict, end: dict, m: int) -> dict[str, float]:
    """How far the first layer and the readout moved (weights and biases together), relative to their size."""
    out = {}
    for name, i in (("first layer", 0), ("readout", 1)):
        a = torch.cat([start[f"weights.{i}"][m].flatten(), start[f"biases.{i}"][m].flatten()]).double()
        b = torch.cat([end[f"weights.{i}"][m].flatten(), end[f"biases.{i}"][m].flatten()]).double()
        out[name] = float((b - a).norm() / a.norm())
    return out


def _net_measures(cfg: MinimaConfig, problem: paper_b_datasets.Problem, width: int, store: Store) -> dict:
    nets = paper_b_runs.states(problem, width, store)
    x, y = paper_b_runs.training_set(problem)
    sizes = problem.sizes(width)
    rows = []
    for m, seed in enumerate(problem.seeds):
        if seed not in cfg.net_seeds:
            continue
        for experiment, start in (("Exp 1", "random init"), ("Exp 2", "adversarial init")):
            net = _member(nets[experiment], m, sizes)
            loss, params = landscape.training_loss(net, x[m:m + 1], y[m:m + 1])
            top, iters = landscape.top_eigenvalue(loss, params, cfg.hessian_tol, cfg.hessian_cap)
            trace, _ = landscape.hessian_trace(loss, params, cfg.hutchinson)
            state = nets[experiment]
            w1, b1 = state["weights.0"][m], state["biases.0"][m, 0]
            w2, b2 = state["weights.1"][m, :, 0], state["biases.1"][m, 0, 0]
            dist = landscape.boundary_distance_2d(w1, b1, w2, b2, x[m])
            rows.append({"seed": seed, "experiment": experiment, "top eigenvalue": top, "power iterations": iters,
                         "trace": trace, "distance mean": float(dist.mean()),
                         "distance median": float(dist.median()), "distance min": float(dist.min()),
                         **_layer_moves(nets[start], state, m)})
    return {"rows": rows}


def _net_key(cfg: MinimaConfig, problem: paper_b_datasets.Problem, width: int) -> dict:
    settings = cfg.settings("net_seeds", "hessian_tol", "hessian_cap", "hutchinson")
    return {"problem": problem.key, "width": width, "seeds": problem.seeds, "train": problem.train, **settings}


def _net_stored(cfg: MinimaConfig, problem: paper_b_datasets.Problem, width: int, store: Store) -> Stored:
    return store.load_or_run("beyond_nets", _net_key(cfg, problem, width),
                             lambda _: (_net_measures(cfg, problem, width, store), {}))


def net_measures(cfg: MinimaConfig, store: Store | None = None) -> pd.DataFrame:
    """Per data set, width, measured seed and experiment (Exp 1: from the random init; Exp 2: from the adversarial
    init) of Paper B's sweep: sharpness, the exact distance of the training points to the decision boundary (mean,
    median, smallest), and how far the first layer and the readout moved in that (phase 2) training."""
    store = store or Store()
    rows = []
    for dataset in cfg.datasets:
        problem = paper_b_datasets.problem_of(cfg.paper_b, dataset)
        for width in paper_b_datasets.widths_of(cfg.paper_b, dataset):
            m = _net_stored(cfg, problem, width, store).metrics
            rows += [{"dataset": dataset, "width": width, **r} for r in m["rows"]]
    return pd.DataFrame(rows)


# Summaries: what the measurements suggest, with their spread over seeds

def compare(table: pd.DataFrame, by: list[str], value: str, column: str, first: str, second: str) -> pd.DataFrame:
    """Per group of `by`: the mean of `value` over seeds where `column` is `first` and where it is `second`, their
    ratio, and in how many seeds `second`'s value is the larger."""
    wide = table.pivot_table(index=by + ["seed"], columns=column, values=value).reset_index()
    rows = []
    for key, g in wide.groupby(by):
        key = key if isinstance(key, tuple) else (key,)
        a, b = g[first].mean(), g[second].mean()
        rows.append({**dict(zip(by, key)), first: a, second: b, "ratio": b / a if a else np.nan,
                     "higher": int((g[second] > g[first]).sum()), "seeds": len(g)})
    return pd.DataFrame(rows)


def flip_medians(flips: pd.DataFrame) -> pd.DataFrame:
    """Per run (model, seed, init, mode) and attack: the median over test images of the smallest flipping
    perturbation (inf when fewer than half flip within eps_max) and the share of images that flip at all."""
    g = flips.groupby(["model", "seed", "init", "mode", "attack"])["epsilon"]
    return pd.DataFrame({"median epsilon": g.median(),
                         "flipped %": g.apply(lambda e: 100 * float(np.isfinite(e).mean()))}).reset_index()


def path_summary(paths: pd.DataFrame) -> pd.DataFrame:
    """Per model, recipe and seed, along the line from the random-init minimum to the adversarial-init one: the
    loss barrier (highest training loss on the line above the higher end), the lowest training accuracy on it,
    test accuracy at both ends, and the first alpha where test accuracy is below the midpoint of its two ends."""
    rows = []
    for (model, mode, seed), g in paths.groupby(["model", "mode", "seed"]):
        g = g.sort_values("alpha")
        ends = g.iloc[[0, -1]]
        t0, t1 = ends["test acc %"].tolist()
        below = g[g["test acc %"] < (t0 + t1) / 2]
        rows.append({"model": model, "mode": mode, "seed": seed,
                     "barrier": g["train loss"].max() - ends["train loss"].max(),
                     "lowest train acc %": g["train acc %"].min(), "test acc % at 0": t0, "test acc % at 1": t1,
                     "half-way alpha": below["alpha"].min() if len(below) else np.nan})
    return pd.DataFrame(rows)


def layer_thirds(layers: pd.DataFrame) -> pd.DataFrame:
    """Per run, the mean relative distance from the start of the parameter tensors in the first, middle and last
    third of the network's depth (Paper A's models)."""
    def third(g: pd.DataFrame) -> pd.Series:
        part = pd.cut(g["depth"], 3, labels=["first third", "middle third", "last third"])
        return g.groupby(part, observed=False)["distance"].mean()
    out = layers.groupby(["model", "seed", "init", "mode"]).apply(third, include_groups=False)
    return out.reset_index()


NOT_CLAIMED = "(neither paper)"
UNSIZED = stats.no_number("neither paper makes this claim")


def _pairs(table: pd.DataFrame, by: list[str], value: str, column: str, first: str, second: str):
    """Per group: its name and the paired values of `first` and `second` over seeds. A seed with a value that is
    not finite on either side is left out (a net that predicts one class everywhere has no boundary to measure)."""
    wide = table.pivot_table(index=by + ["seed"], columns=column, values=value).reset_index()
    wide = wide[np.isfinite(wide[first]) & np.isfinite(wide[second])]
    for key, g in wide.groupby(by):
        key = key if isinstance(key, tuple) else (key,)
        g = g.set_index("seed")
        yield ", ".join(map(str, key)), g[first], g[second]


def image_findings(sharpness: pd.DataFrame, flips: pd.DataFrame, paths: pd.DataFrame,
                   eps_max: float) -> dict[str, list[stats.Verdict]]:
    """Paper A's image runs, paired over seeds; each question is one family over models and recipes: is the
    adversarial-init minimum sharper (top eigenvalue; trace), do its test images flip at a smaller perturbation
    (median over images, PGD; a median beyond eps_max counts as eps_max), and is there a training-loss barrier on
    the line between the two minima?"""
    by, init = ["model", "mode"], ("init", "random", "adversarial")
    out = {}
    for value in ("top eigenvalue", "trace"):
        out[f"the adversarial-init minimum is sharper ({value})"] = stats.family(
            [stats.greater(f"{k}: adversarial-init minimum sharper ({value})", NOT_CLAIMED, b, a,
                           ("adversarial", "random"), UNSIZED) for k, a, b in _pairs(sharpness, by, value, *init)])
    med = flip_medians(flips)
    med = med[med["attack"] == "PGD"].assign(**{"median epsilon": lambda t: t["median epsilon"].clip(upper=eps_max)})
    out["test images flip at a smaller perturbation from the adversarial init"] = stats.family(
        [stats.greater(f"{k}: test images flip at a smaller PGD perturbation from the adversarial init", NOT_CLAIMED,
                       a, b, ("random", "adversarial"), UNSIZED)
         for k, a, b in _pairs(med, by, "median epsilon", *init)])
    barriers = path_summary(paths).set_index("seed")
    out["a training-loss barrier separates the two minima"] = stats.family(
        [stats.greater(f"{model}, {mode}: a training-loss barrier between the two minima", NOT_CLAIMED,
                       g["barrier"], 0 * g["barrier"], ("barrier", "none"), UNSIZED)
         for (model, mode), g in barriers.groupby(by)])
    return out


def net_findings(nets: pd.DataFrame) -> dict[str, list[stats.Verdict]]:
    """Paper B's nets, paired over seeds; each question is one family over data sets and widths: is Exp 2's minimum
    sharper than Exp 1's, are its training points nearer the boundary (median distance), and does its first layer
    move less in phase 2 (relative to its size) than Exp 1's moves from its random init?"""
    by, ex = ["dataset", "width"], ("experiment", "Exp 1", "Exp 2")
    return {
        "Exp 2's minimum is sharper": stats.family(
            [stats.greater(f"{k}: Exp 2's minimum sharper (top eigenvalue)", NOT_CLAIMED, b, a, ("Exp 2", "Exp 1"),
                           UNSIZED)
             for k, a, b in _pairs(nets, by, "top eigenvalue", *ex)]),
        "Exp 2's training points lie nearer the boundary": stats.family(
            [stats.greater(f"{k}: Exp 2's training points nearer the boundary", NOT_CLAIMED, a, b, ("Exp 1", "Exp 2"),
                           UNSIZED)
             for k, a, b in _pairs(nets, by, "distance median", *ex)]),
        "Exp 2's first layer moves less in phase 2": stats.family(
            [stats.greater(f"{k}: Exp 2's first layer moves less", NOT_CLAIMED, a, b, ("Exp 1", "Exp 2"), UNSIZED)
             for k, a, b in _pairs(nets, by, "first layer", *ex)]),
    }


def suggests(verdicts: list[stats.Verdict], what: str) -> str:
    """One sentence on a family of findings: in how many of its cases the data support `what` at the book's level
    (paired over seeds, Holm-corrected), in how many they contradict it, and where they cannot tell."""
    counts = {v: [f.claim.split(":")[0] for f in verdicts if f.verdict == v] for v in stats.VERDICTS}
    parts = [f"supported in {len(counts[stats.HOLDS])} of {len(verdicts)} ({'; '.join(counts[stats.HOLDS])})"
             if counts[stats.HOLDS] else f"supported in none of {len(verdicts)}"]
    if counts[stats.FAILS]:
        parts.append(f"contradicted in {len(counts[stats.FAILS])} "
                     f"({'; '.join(counts[stats.FAILS])})")
    if counts[stats.UNCLEAR]:
        parts.append(f"too close to call over these seeds in {len(counts[stats.UNCLEAR])}")
    if counts[stats.UNTESTED]:
        parts.append(f"not tested in {len(counts[stats.UNTESTED])} ({'; '.join(counts[stats.UNTESTED])})")
    return f"*{what}*: " + ", ".join(parts) + "."


# The chapter: everything measured, and what it says beside each family of findings

SAYS = {   # family -> (the statement it tests, what the papers did about it)
    "the adversarial-init minimum is sharper (top eigenvalue)":
        ("The adversarial-init minimum is sharper (top eigenvalue)", ""),
    "the adversarial-init minimum is sharper (trace)": ("It is sharper by the Hessian's trace", ""),
    "Exp 2's minimum is sharper": ("Exp 2's minimum is sharper than Exp 1's", "Neither paper measures it."),
    "a training-loss barrier separates the two minima":
        ("A training-loss barrier separates the two minima",
         "`half-way alpha` is where test accuracy first falls below the midpoint of its two ends: near 0.5 means it "
         "falls steadily along the line, near 1 that it holds until the end. Neither paper looks at the line between "
         "the minima."),
    "test images flip at a smaller perturbation from the adversarial init":
        ("Test images flip at a smaller perturbation from the adversarial init",
         "Paper A's Figure 6 (the complexity chapter) reports accuracy under FGSM at a few fixed radii; this is the "
         "radius each image needs, a finer view of the same robustness, which the paper does not report."),
    "Exp 2's training points lie nearer the boundary":
        ("Exp 2's training points lie nearer its boundary than Exp 1's",
         "Paper B draws the boundaries (the boundaries chapter); it does not measure these distances."),
    "Exp 2's first layer moves less in phase 2":
        ("Exp 2's first layer moves less in phase 2 than Exp 1's in training",
         "Paper B states the hypothesis; it does not measure it."),
}


@dataclass
class Measured:
    cfg: MinimaConfig
    image: dict[str, pd.DataFrame]   # image_measures
    paths: pd.DataFrame              # image_paths
    nets: pd.DataFrame               # net_measures
    found: dict[str, list[stats.Verdict]]

    def setting(self) -> str:
        c = self.cfg
        return (f"Scale `{c.scale}`: Paper A's {', '.join(c.models)} at seeds {list(c.seeds)} (the training "
                f"chapter's runs); Paper B's {', '.join(c.datasets)} at seeds {list(c.net_seeds)} and every width of "
                "its sweep (the widths chapter's runs).")

    def says(self, *families: str) -> str:
        """For each family: how far the data support its statement, then what the papers did about it."""
        return " ".join(" ".join(filter(None, (suggests(self.found[f], SAYS[f][0]), SAYS[f][1]))) for f in families)

    def capped(self) -> str:
        sharp = self.image["sharpness"]
        n = int((sharp["power iterations"] >= self.cfg.hessian_cap).sum())
        return (f"Power iteration reached its cap of {self.cfg.hessian_cap} products in {n} of {len(sharp)} runs "
                "(those eigenvalues are less settled). Neither paper measures sharpness.")

    def verdicts(self) -> list[stats.Verdict]:
        return [v for vs in self.found.values() for v in vs]

    def sharpness_table(self) -> pd.DataFrame:
        """Per model and recipe: the top eigenvalue from each init over seeds (see compare)."""
        return compare(self.image["sharpness"], ["model", "mode"], "top eigenvalue", "init", "random", "adversarial")

    def path_table(self) -> pd.DataFrame:
        """Per model and recipe: the line between the two minima (see path_summary), the mean over seeds."""
        return run_means(path_summary(self.paths), ["model", "mode"])

    def flip_table(self) -> pd.DataFrame:
        """Per model, recipe, init and attack: the flipping perturbations (see flip_medians), the mean over seeds."""
        return run_means(flip_medians(self.image["flips"]), ["model", "mode", "init", "attack"])

    def layer_table(self) -> pd.DataFrame:
        """Per model, init and recipe: how far each third of the depth moved (see layer_thirds), the mean over
        seeds."""
        return run_means(layer_thirds(self.image["layers"]), ["model", "init", "mode"])


def measure_jobs(cfg: MinimaConfig) -> list[Job]:
    """The chapter's measurements as jobs, one per run, pair of runs or Paper B data set and width. Why: each is
    computed on one thread (as every stored result is), so in the chapter's kernel alone they left the other cores
    idle; over one process per core they share them. Their inputs are the other chapters' runs, stored first."""
    start = lambda run: (("adversarial", image_runs.phase1_key(run)),) if run.adversarial is not None else ()
    image = [Job(functools.partial(_image_stored, cfg, run), (("beyond_minima", _image_key(cfg, run)),),
                 inputs=(("image", run), *start(run)), label=f"measures {run.model} seed {run.seed}")
             for _, run in image_cells(cfg)]
    paths = [Job(functools.partial(_path_stored, cfg, a, b), (("beyond_path", _path_key(cfg, a, b)),),
                 inputs=(("image", a), ("image", b)), label=f"path {a.model} seed {a.seed}")
             for _, a, b in _path_pairs(cfg)]
    nets = []
    for dataset in cfg.datasets:
        problem = paper_b_datasets.problem_of(cfg.paper_b, dataset)
        nets += [Job(functools.partial(_net_stored, cfg, problem, width),
                     (("beyond_nets", _net_key(cfg, problem, width)),),
                     inputs=paper_b_runs.problem_results(problem, width), label=f"nets {dataset} width {width}")
                 for width in paper_b_datasets.widths_of(cfg.paper_b, dataset)]
    return image + paths + nets


def measure(cfg: MinimaConfig, executor: str = "local", store: Store | None = None) -> Measured:
    """The chapter's measurements and findings; the other chapters' runs it reads are trained first where missing
    (on `executor`)."""
    store = store or Store()
    cells = image_cells(cfg)
    paper_a.train_all(cells, store, executor=executor)
    grid.run(paper_b_runs.width_jobs(cfg.paper_b), store, executor, desc="widths")
    grid.run(measure_jobs(cfg), store, workers=paper_a.default_workers([run for _, run in cells]), desc="measures")
    image, paths, nets = image_measures(cfg, store), image_paths(cfg, store), net_measures(cfg, store)
    return Measured(cfg, image, paths, nets,
                    {**image_findings(image["sharpness"], image["flips"], paths, cfg.eps_max), **net_findings(nets)})


def run_means(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The mean over seeds of a per-run table's numbers, per group of `by`."""
    return table.groupby(by).mean(numeric_only=True).drop(columns="seed")
