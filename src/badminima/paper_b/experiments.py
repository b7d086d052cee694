"""Paper B's chapters' tables and what the chapters say about them: one row per data set, width, experiment and
seed of the stored runs (`sweep`), their summaries and paired gaps, phase 1's progress on the random labels, the
norms, and the phase-1 budgets (beyond the paper). Nothing here trains: each table asks badminima.paper_b.runs for
its runs, which loads them from the store (or trains them once)."""
from __future__ import annotations

import math

import pandas as pd

from badminima.paper_b import protocol
from badminima.paper_b.datasets import Problem, dataset_name, problem_of, widths_of
from badminima.paper_b.runs import MEMBERS, run_budget, run_problem, run_width
from badminima.core.store import Store, Stored


# Tables

def _percent(fraction: float) -> float:
    return round(100 * fraction, 4)   # accuracies are counts over float32: drop the float noise


def width_table(cfg: protocol.WidthsConfig, dataset: str, width: int, store: Store | None = None) -> pd.DataFrame:
    """One row per experiment and seed of one data set and width."""
    return problem_table(problem_of(cfg, dataset), width, store)


def diverged(metrics: dict, member: int) -> bool:
    """Whether a member of a stored group diverged (groups stored before it was recorded did not)."""
    epochs = metrics.get("diverge_epoch")
    return bool(epochs) and epochs[member] is not None


def problem_table(problem: Problem, width: int, store: Store | None = None) -> pd.DataFrame:
    """One row per experiment and seed of one problem and width: the columns of every Paper B table. `fitted`: the
    run reached zero training error; a run that diverged (its loss became non-finite) stopped there: not fitted (no
    steps), not at the cap, `diverged`; so for phase 1 (whose columns are empty for Exp 1, which does not start
    from it)."""
    groups = run_problem(problem, width, store)
    k = len(problem.seeds)
    phase1 = groups["start"].metrics
    d, p, out = problem.sizes(width)
    parameters, points = d * p + p + p * out + out, problem.data.x.shape[1]
    rows = []
    for experiment, (group, block) in MEMBERS.items():
        m = groups[group].metrics
        for i, seed in enumerate(problem.seeds):
            j = block * k + i
            lost, lost1 = diverged(m, j), experiment != "Exp 1" and diverged(phase1, k + i)
            rows.append({
                "dataset": problem.dataset, "name": problem.name, "width": width, "parameters": parameters,
                "points": points, "experiment": experiment, "seed": seed,
                "test acc %": _percent(m["test_acc"][j]), "train acc %": _percent(m["train_acc"][j]),
                "steps": m["fit_step"][j] if not lost else None,
                "hit cap": m["fit_step"][j] is None and not lost, "cap": problem.cap,
                "phase-1 acc %": _percent(phase1["train_acc"][k + i]) if experiment != "Exp 1" else math.nan,
                "phase-1 steps": phase1["fit_step"][k + i] if experiment != "Exp 1" and not lost1 else None,
                "phase-1 hit cap": phase1["fit_step"][k + i] is None and not lost1 if experiment != "Exp 1" else False,
                "init norm": m["init_norm"][j], "final norm": m["final_norm"][j],
                "fitted": m["fit_step"][j] is not None and not lost, "diverged": lost,
                "phase-1 fitted": (phase1["fit_step"][k + i] is not None and not lost1) if experiment != "Exp 1"
                else None,
                "phase-1 diverged": lost1,
            })
    table = pd.DataFrame(rows)
    for column in ("steps", "phase-1 steps"):
        table[column] = table[column].astype("Int64")
    return table


def sweep(cfg: protocol.WidthsConfig, store: Store | None = None) -> pd.DataFrame:
    """One row per data set, width, experiment and seed: accuracies, steps to zero training error (None: the
    run hit the cap), norms, and how far phase 1 got on the random labels."""
    store = store or Store()
    tables = [width_table(cfg, d, p, store) for d in cfg.datasets for p in widths_of(cfg, d)]
    return pd.concat(tables, ignore_index=True)


def curves(cfg: protocol.WidthsConfig, store: Store | None = None) -> pd.DataFrame:
    """Training accuracy against steps of the first group of every data set and width: one row per data set,
    width, labels ("true": Exp 1, "random": phase 1), seed and recorded step."""
    store = store or Store()
    rows = []
    k = len(cfg.seeds)
    for dataset in cfg.datasets:
        for width in widths_of(cfg, dataset):
            curve = run_width(cfg, dataset, width, store)["start"].metrics["curve"]
            for step, accs in zip(curve["step"], curve["train_acc"]):
                for j, acc in enumerate(accs):
                    rows.append({"dataset": dataset, "name": dataset_name(cfg, dataset), "width": width,
                                 "labels": "true" if j < k else "random", "seed": cfg.seeds[j % k], "step": step,
                                 "train acc %": _percent(acc)})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set, width and experiment: test accuracy (mean, std, median, quartiles), steps to zero training
    error (median and quartiles, a run that hit the cap counted at the cap: a lower bound), and cap hits."""
    steps = table["steps"].astype("Float64").fillna(table["cap"].astype(float)).astype(float)
    grouped = table.assign(steps_or_cap=steps).groupby(["dataset", "width", "experiment"], sort=False)
    acc = grouped["test acc %"]
    out = pd.DataFrame({
        "runs": grouped.size(), "test mean": acc.mean(), "test std": acc.std(ddof=1).fillna(0.0),
        "test median": acc.median(), "test q1": acc.quantile(0.25), "test q3": acc.quantile(0.75),
        "steps median": grouped["steps_or_cap"].median(), "steps q1": grouped["steps_or_cap"].quantile(0.25),
        "steps q3": grouped["steps_or_cap"].quantile(0.75), "cap hits": grouped["hit cap"].sum(),
        "phase-1 cap hits": grouped["phase-1 hit cap"].sum(), "cap": grouped["cap"].first(),
    })
    out["test low"] = out["test mean"] - out["test std"]
    out["test high"] = out["test mean"] + out["test std"]
    return out.reset_index()


def gaps(table: pd.DataFrame, a: str = "Exp 1", b: str = "Exp 2") -> pd.DataFrame:
    """Per data set and width: the test-accuracy gap a - b paired over seeds, its standard error, and whether it
    exceeds two standard errors."""
    wide = table.pivot_table(index=["dataset", "width", "seed"], columns="experiment", values="test acc %")
    diff = (wide[a] - wide[b]).rename("gap")
    grouped = diff.groupby(level=["dataset", "width"], sort=False)
    out = pd.DataFrame({"seeds": grouped.size(), "mean gap": grouped.mean(),
                        "s.e.": grouped.std(ddof=1) / grouped.size().pow(0.5)})
    out["significant"] = out["mean gap"].abs() > 2 * out["s.e."]
    order = list(dict.fromkeys(table["dataset"]))
    return out.reset_index().sort_values(["dataset", "width"], key=lambda c: c.map(order.index)
                                         if c.name == "dataset" else c, kind="stable").reset_index(drop=True)


# What the widths chapter says about its tables

def describe(cfg: protocol.WidthsConfig, runs: int) -> str:
    """The sweep's setting in one paragraph, for the widths chapter's opening."""
    source = ("(MNIST's files were found in the data folder)." if cfg.image_source == "mnist" else
              "(MNIST's files are not in the data folder, so Fashion-MNIST stands in for it: same format, harder).")
    return (f"{len(cfg.seeds)} seeds; widths {list(cfg.widths)} on the 2-D sets and {list(cfg.image_widths)} on the "
            f"images; caps of {cfg.max_steps:,} steps (2-D) and {cfg.image_max_epochs} epochs (images) per phase; "
            f"{runs} runs in all. The image set is **{cfg.image_source}** {source}")


def phase1_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set (by name) and width: phase 1's mean and lowest training accuracy on the random labels, how many
    of its runs fitted them (zero training error) and the median steps those took, and how many hit the cap."""
    return table[table.experiment == "Exp 2"].groupby(["name", "width"], sort=False).agg(
        **{"phase-1 train acc % (mean)": ("phase-1 acc %", "mean"), "lowest": ("phase-1 acc %", "min"),
           "fitted": ("phase-1 fitted", "sum"), "median steps to fit": ("phase-1 steps", "median"),
           "runs at the cap": ("phase-1 hit cap", "sum"), "runs": ("seed", "size"),
           "parameters": ("parameters", "first"), "points": ("points", "first")})


def phase1_lines(phase1: pd.DataFrame) -> str:
    """phase1_table in words, saying where a net has fewer parameters than training points (where a fit of random
    labels, if reachable at all, is the hardest)."""
    stuck = int(phase1["runs at the cap"].sum())
    text = f"Phase 1 hit its cap in **{stuck} of {phase1['runs'].sum()}** runs. " + " ".join(
        f"On {d}, phase 1 reached {g['phase-1 train acc % (mean)'].mean():.1f}% on the random labels on average "
        f"and fitted them in {g['fitted'].sum()} of {g['runs'].sum()} runs ({g['runs at the cap'].sum()} at the cap)."
        for d, g in phase1.groupby(level="name", sort=False))
    small = phase1[phase1["parameters"] < phase1["points"]]
    if len(small):
        text += " " + " ".join(
            f"At p = {w} on {d} the net has {r['parameters']} parameters for {r['points']} random labels, fewer "
            f"than the points; {r['fitted']} of {r['runs']} runs fitted them, the lowest reaching "
            f"{r['lowest']:.0f}%."
            for (d, w), r in small.iterrows())
    if stuck:
        text += (" Where phase 1 stops short of 100%, Exp 2 and Exp 3 start from a *partly* adversarial "
                 "initialization: their claims are not tested there.")
    return text


def curve_lines(curves: pd.DataFrame) -> list[str]:
    """Phase 1's mean training accuracy on the random labels at the largest width, halfway and at the end."""
    lines = []
    for _, g in curves[curves.labels == "random"].groupby("dataset", sort=False):
        g = g[g.width == g.width.max()]
        mean = g.groupby("step")["train acc %"].mean()
        half = mean.index[abs(mean.index - mean.index[-1] / 2).argmin()]
        lines.append(f"- **{g.name.iloc[0]}**, p = {g.width.max()}: {mean[half]:.1f}% at step {half:,}, "
                     f"{mean.iloc[-1]:.1f}% at step {mean.index[-1]:,}.")
    return lines


FIT_TARGET = (100, 0.75)   # phase 1 should fit its random labels in three quarters of the runs at widths >= 100


def fit_target_lines(phase1: pd.DataFrame, curves: pd.DataFrame, cap: int) -> list[str]:
    """Per 2-D data set: whether phase 1 fitted its random labels in FIT_TARGET's share of the runs at its widths,
    and where it did not, whether the curve at the largest width was still rising over the second half of the cap
    (more steps would fit more) or flat (they would not)."""
    wide, share = FIT_TARGET
    lines = [f"Against the aim of fitting the random labels in {share:.0%} of the runs at widths of {wide} and more:"]
    toy = curves[curves.dataset.isin(protocol.TOY) & (curves.labels == "random")]
    for name, g in toy.groupby("name", sort=False):
        rows = phase1.loc[name]
        rows = rows[rows.index >= wide]
        fitted, runs = int(rows["fitted"].sum()), int(rows["runs"].sum())
        line = f"- **{name}**: phase 1 fitted {fitted} of {runs} runs at widths >= {wide}"
        if not runs or fitted >= share * runs:
            lines.append(line + f", at least {share:.0%} of them.")
            continue
        top = g[g.width == g.width.max()]
        mean = top.groupby("step")["train acc %"].mean()
        half = mean.index[abs(mean.index - mean.index[-1] / 2).argmin()]
        rise = mean.iloc[-1] - mean[half]
        lines.append(line + f", short of {share:.0%}. At p = {g.width.max()} its mean accuracy on the random labels "
                     f"went from {mean[half]:.1f}% at step {half:,} to {mean.iloc[-1]:.1f}% at {mean.index[-1]:,}"
                     + (f", still rising, so more steps than the cap of {cap:,} would fit more of them: the cap, not "
                        "the width, keeps it short." if rise >= 1 else
                        ", flat, so more steps at this rate would not fit them."))
    return lines


def gap_lines(gaps_: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """Per data set: at how many widths Exp 2 is more than two standard errors below (above) Exp 1, and the
    range of the gap."""
    lines = []
    for d, g in gaps_.groupby("dataset", sort=False):
        worse = g[(g["mean gap"] > 0) & g.significant]
        better = g[(g["mean gap"] < 0) & g.significant]
        lines.append(
            f"- **{names[d]}**: Exp 2 is significantly below Exp 1 at {len(worse)} of {len(g)} widths"
            + (f" (p = {', '.join(map(str, worse.width))})" if len(worse) else "")
            + (f" and significantly above it at {len(better)} (p = {', '.join(map(str, better.width))})"
               if len(better) else "")
            + f"; the gap ranges from {g['mean gap'].min():+.2f} to {g['mean gap'].max():+.2f} points.")
    return lines


def steps_lines(summary_: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """Per data set, at its largest width: the median steps to zero training error of each experiment's last
    phase, with its runs at the cap (their steps are the cap, a lower bound)."""
    lines = []
    for d, g in summary_.groupby("dataset", sort=False):
        g = g[g.width == g.width.max()].set_index("experiment")
        parts = [f"{e} {g.loc[e, 'steps median']:,.0f}" + (f" ({int(g.loc[e, 'cap hits'])} of "
                 f"{int(g.loc[e, 'runs'])} at the cap)" if g.loc[e, "cap hits"] else "")
                 for e in ("Exp 1", "Exp 2", "Exp 3") if e in g.index]
        lines.append(f"- **{names[d]}**, p = {g.width.iloc[0]}: median steps " + ", ".join(parts) + ".")
    return lines


def norm_lines(table: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """How much phase 1 changed the norm and, per data set over all widths and seeds, the mean test accuracy of
    Exp 1, the Norm run and Exp 2, and where the Norm run falls between the two."""
    ratio = norm_table(table)["adversarial / random"]
    lines = [f"Phase 1 changed the norm by a factor between {ratio.min():.2f} and {ratio.max():.2f}. Test accuracy:"]
    for d, g in table.groupby("dataset", sort=False):
        mean = g.groupby("experiment")["test acc %"].mean()
        exp1, norm, exp2 = mean["Exp 1"], mean["Norm"], mean["Exp 2"]
        where = ("between them" if min(exp1, exp2) <= norm <= max(exp1, exp2)
                 else "above both" if norm > max(exp1, exp2) else "below both")
        lines.append(f"- **{names[d]}**: Exp 1 {exp1:.1f}%, Norm {norm:.1f}%, Exp 2 {exp2:.1f}% (mean over widths "
                     f"and seeds): the Norm run is {where}.")
    return lines


def median_line(summary_: pd.DataFrame, dataset: str) -> str:
    """The median test accuracy of Exp 1-3 at each width of one data set (Figure 5)."""
    rows = summary_[summary_.dataset == dataset].pivot(index="width", columns="experiment", values="test median")
    return "; ".join(f"p = {p}: Exp 1 {r['Exp 1']:.1f}%, Exp 2 {r['Exp 2']:.1f}%, Exp 3 {r['Exp 3']:.1f}%"
                     for p, r in rows.iterrows()) + "."


def median_lines(summary_: pd.DataFrame, panels: list[tuple[str, str]]) -> list[str]:
    """Figure 5 in words: one sentence per (data set, name), its median_line."""
    return [f"Median test accuracy on {name}: " + median_line(summary_, dataset) for dataset, name in panels]


def gap_table(gaps_: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """gaps with each data set by the name the chapters print."""
    return gaps_.assign(dataset=gaps_.dataset.map(names))


def cap_heading(cfg: protocol.WidthsConfig) -> str:
    """What cap_table counts, and of how many runs."""
    return f"Runs that hit the cap, per data set, width and experiment (of {len(cfg.seeds)} each):"


def cap_table(summary_: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Runs that hit the cap per data set (by name), width and experiment."""
    caps = summary_.pivot_table(index=["dataset", "width"], columns="experiment", values="cap hits", aggfunc="sum",
                                sort=False)
    return caps.rename(index=names, level="dataset")


def norm_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set and width: the mean total parameter norm of the random init (Exp 1) and of the adversarial
    init (Exp 2's start, the end of phase 1), and their ratio."""
    norms = table[table.experiment.isin(["Exp 1", "Exp 2"])].pivot_table(
        index=["name", "width"], columns="experiment", values="init norm", sort=False)
    norms["adversarial / random"] = norms["Exp 2"] / norms["Exp 1"]
    return norms.rename(columns={"Exp 1": "random init", "Exp 2": "adversarial init"})


# Phase-1 budgets (beyond the paper)

def _budget_rows(problem: Problem, width: int, budget: int, to_fit: bool, phase1: Stored, offset: int,
                 retrain: Stored, exp1: pd.Series) -> list[dict]:
    k = len(problem.seeds)
    p1, re = phase1.metrics, retrain.metrics
    return [{"dataset": problem.dataset, "name": problem.name, "width": width, "budget": budget,
             "stopped": "zero error or cap" if to_fit else "budget", "seed": seed,
             "phase-1 acc %": _percent(p1["train_acc"][offset + i]),
             "phase-1 fitted": p1["fit_step"][offset + i] is not None,
             "phase-1 steps": p1["fit_step"][offset + i] or budget,
             "Exp 1 test %": exp1[seed], "Exp 2 test %": _percent(re["test_acc"][i]),
             "Norm test %": _percent(re["test_acc"][k + i])} for i, seed in enumerate(problem.seeds)]


def budget_table(cfg: protocol.BudgetConfig, store: Store | None = None) -> pd.DataFrame:
    """One row per data set, phase-1 budget and seed: how far phase 1 got on the random labels (accuracy, whether
    it fitted, its steps), the test accuracy of Exp 1, of Exp 2 from there and of the Norm run, and the gap
    Exp 1 - Exp 2. The last budget of each data set is the sweep's own phase 1 (to zero error or the cap)."""
    store = store or Store()
    width, rows = cfg.sweep.widths[0], []
    for dataset in cfg.sweep.datasets:
        problem = problem_of(cfg.sweep, dataset)
        k = len(problem.seeds)
        groups = run_problem(problem, width, store)
        exp1 = pd.Series([_percent(a) for a in groups["start"].metrics["test_acc"][:k]], index=problem.seeds)
        for budget in cfg.budgets:
            short = run_budget(problem, width, budget, store)
            rows += _budget_rows(problem, width, budget, False, short["phase 1"], 0, short["retrain"], exp1)
        rows += _budget_rows(problem, width, problem.cap, True, groups["start"], k, groups["retrain"], exp1)
    table = pd.DataFrame(rows)
    table["gap"] = table["Exp 1 test %"] - table["Exp 2 test %"]
    return table


def describe_budget(cfg: protocol.BudgetConfig) -> str:
    """The budget chapter's setting in one sentence, for its opening."""
    sweep = cfg.sweep
    return (f"width p = {sweep.widths[0]}, {len(sweep.seeds)} seeds, phase-1 budgets "
            f"{', '.join(f'{b:,}' for b in cfg.budgets)} steps, a cap of {sweep.max_steps:,} steps on every other "
            "phase.")


def budget_shown(summary_: pd.DataFrame) -> pd.DataFrame:
    """budget_summary as the chapter shows it: indexed by data set (by name), budget (with thousands separators)
    and how phase 1 stopped."""
    shown = summary_.assign(budget=summary_.budget.map("{:,}".format))
    return shown.drop(columns=["dataset"]).set_index(["name", "budget", "stopped"])


def budget_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set and budget: the mean gap Exp 1 - Exp 2 and its standard error over seeds, the mean phase-1
    accuracy on the random labels, and how many seeds' phase 1 fitted them."""
    grouped = table.groupby(["dataset", "name", "budget", "stopped"], sort=False)
    out = pd.DataFrame({"seeds": grouped.size(), "mean gap": grouped["gap"].mean(),
                        "s.e.": grouped["gap"].sem().fillna(0.0),
                        "phase-1 acc %": grouped["phase-1 acc %"].mean(),
                        "phase-1 fitted": grouped["phase-1 fitted"].sum(),
                        "Exp 1 test %": grouped["Exp 1 test %"].mean(),
                        "Exp 2 test %": grouped["Exp 2 test %"].mean(),
                        "Norm test %": grouped["Norm test %"].mean()})
    return out.reset_index()


def budget_lines(table: pd.DataFrame) -> list[str]:
    """One sentence per data set of budget_table: the gap after each budget and with phase 1 to zero error, and
    the rank correlation (Spearman's, over seeds and budgets) of the gap with phase 1's accuracy."""
    lines = []
    for (dataset, name), rows in table.groupby(["dataset", "name"], sort=False):
        s = budget_summary(rows)
        parts = [f"{r['mean gap']:+.2f} ± {r['s.e.']:.2f} after {int(r.budget):,} steps (phase 1 at "
                 f"{r['phase-1 acc %']:.1f}%)" for _, r in s[s.stopped == "budget"].iterrows()]
        full = s[s.stopped != "budget"].iloc[0]
        parts.append(f"{full['mean gap']:+.2f} ± {full['s.e.']:.2f} with phase 1 run to zero error or the cap "
                     f"({int(full['phase-1 fitted'])} of {int(full.seeds)} seeds fitted, at "
                     f"{full['phase-1 acc %']:.1f}%)")
        ranks = rows[["phase-1 acc %", "gap"]].rank()   # Spearman's rho: Pearson's on the ranks
        rho = ranks["phase-1 acc %"].corr(ranks["gap"])
        lines.append(f"- **{name}**: the gap Exp 1 − Exp 2 is " + "; ".join(parts)
                     + f". Rank correlation of the gap with phase 1's accuracy: {rho:+.2f}.")
    return lines
