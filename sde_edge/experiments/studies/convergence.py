"""Claim 2: edge converges faster. FD at every kept checkpoint of the unconditional edge and DDPM
runs, and the first iteration at which each seed reaches a fixed level."""
import math

import numpy as np

from sde_edge.experiments.evaluate import evaluate
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.report import aggregate, compare, pm
from sde_edge.experiments.runs import milestone, milestone_steps, unconditional_runs
from sde_edge.experiments.studies.common import Budget, lines, metrics_row, trained_unconditional, write_section
from sde_edge.figures import plt, save_figure
from sde_edge.tables import write_csv

CLAIM = "(2) convergence"
TEMPLATE = """
## Convergence (claim 2)

FD ($sampler@$steps, $n samples) of the unconditional runs at every kept checkpoint, mean ± standard
error over the training seeds; the fixed level is 1.25 x the worse model's final FD, and the table
gives the first checkpoint at or below it per seed.

![convergence](reproduction/convergence/convergence.png)

$table
"""


@register
class Convergence(Study):
    name = "convergence"
    position = 30
    title = "Convergence (claim 2)"
    claims = (CLAIM,)
    summary = "FD against iteration of edge and DDPM (every 500 iterations, ddim@25; 3 seeds)"

    def runs(self, quick=False):
        budget = Budget.of(quick)
        return unconditional_runs(budget.datasets, ("edge", "ddpm"), budget.seeds)

    def owns_evaluation(self, run_key, slug, quick=False):
        return super().owns_evaluation(run_key, slug, quick) and slug == Budget.of(quick).curve.slug

    def run(self, root, out, quick):
        budget = Budget.of(quick)
        protocol, datasets, seeds = budget.curve, budget.datasets, budget.seeds
        rows = []
        for dataset, model, seed, spec in trained_unconditional(budget, root, ("edge", "ddpm")):
            for step in milestone_steps(spec, root, quick):
                metrics = evaluate(spec, root, protocol, step=step, quick=quick)
                rows.append(metrics_row(metrics, dataset=dataset, model=model, seed=seed, iteration=step))
        summary = aggregate(rows, ("dataset", "model", "iteration"), ("fd",))
        write_csv(rows, out / "per_seed.csv")
        write_csv(summary, out / "summary.csv")
        fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.0), squeeze=False)
        claims, reached_rows = [], []
        for ax, dataset in zip(axes[0], datasets):
            level = plot_curves(ax, summary, dataset, protocol)
            reached = {}
            for model in ("edge", "ddpm"):
                per_seed = [first_at_or_below(rows, dataset, model, seed, level) for seed in seeds]
                reached[model] = per_seed
                reached_rows.append({"dataset": dataset, "model": model, "level": level,
                                     **{f"seed{s}": v for s, v in zip(seeds, per_seed)}})
            claims.append(_claim(dataset, level, reached, quick))
        save_figure(fig, out / "convergence.png", dpi=90)
        write_csv(reached_rows, out / "iteration_to_level.csv")
        table = ["| dataset | model | level | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                 "|---|---|---|" + "---|" * len(seeds),
                 *[f"| {r['dataset']} | {r['model']} | {r['level']:.3g} | "
                   + " | ".join(str(r[f"seed{s}"]) for s in seeds) + " |" for r in reached_rows]]
        values = dict(sampler=protocol.sampler, steps=protocol.steps, n=protocol.n, table=lines(table))
        write_section(out, TEMPLATE, values, claims, {"rows": rows, "summary": summary, "reached": reached_rows})
        return summary


def plot_curves(ax, summary, dataset, protocol):
    """FD against iteration of edge and DDPM with their standard-error bands; returns the level."""
    finals = {}
    for model in ("edge", "ddpm"):
        points = sorted((s["iteration"], s["fd"], s["fd_se"]) for s in summary
                        if s["dataset"] == dataset and s["model"] == model)
        its, means, ses = map(np.array, zip(*points))
        ax.plot(its, means, marker="o", label=model)
        ax.fill_between(its, means - np.nan_to_num(ses), means + np.nan_to_num(ses), alpha=0.2)
        finals[model] = means[-1]
    level = 1.25 * max(finals.values())
    ax.axhline(level, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_title(f"{dataset}: FD against iteration ({protocol.sampler}@{protocol.steps})", fontsize=9)
    ax.set_xlabel("iteration")
    ax.legend(fontsize=8)
    return level


def first_at_or_below(rows, dataset, model, seed, level):
    curve = sorted((r["iteration"], r["fd"]) for r in rows
                   if r["dataset"] == dataset and r["model"] == model and r["seed"] == seed)
    return next((it for it, fd in curve if fd <= level), math.nan)


def _claim(dataset, level, reached, quick):
    e, d = (np.array(reached[m], dtype=float) for m in ("edge", "ddpm"))
    if np.isfinite(e).all() and np.isfinite(d).all():
        e_se, d_se = e.std(ddof=1) / math.sqrt(len(e)), d.std(ddof=1) / math.sqrt(len(d))
        verdict, _, _ = compare(e.mean(), e_se, d.mean(), d_se)
        ours = f"iteration to FD <= {level:.3g}: edge {pm(e.mean(), e_se, 4)}, DDPM {pm(d.mean(), d_se, 4)}"
    else:
        verdict = "inconclusive"
        ours = f"not every seed reached FD <= {level:.3g}: edge {reached['edge']}, DDPM {reached['ddpm']}"
    return claim_row(CLAIM, f"{dataset}, checkpoints every {milestone(quick)} iterations",
                     "converges faster to sharper predictions", ours, verdict,
                     "[convergence.png](reproduction/convergence/convergence.png)")
