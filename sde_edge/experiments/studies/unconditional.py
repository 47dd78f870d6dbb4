"""Claim 1 (the paper's Table 1) at CPU scale: every model's unconditional samples, per seed, with the
paper's sampler at the full N and with ddim@50."""
import numpy as np

from sde_edge.experiments.evaluate import Pending, evaluate
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.report import aggregate, compare, pm, summary_table
from sde_edge.experiments.runs import unconditional_runs
from sde_edge.experiments.studies.common import (
    METRICS,
    Budget,
    bar_figure,
    class_share_table,
    lines,
    metrics_row,
    trained_unconditional,
    write_section,
)
from sde_edge.figures import plt, save_figure
from sde_edge.tables import write_csv

CLAIM = "(1) unconditional FID, equal loss (today's recipe)"
PAPER = "up to 30% lower FID than DDPM (Table 1)"
TEMPLATE = """
## Unconditional generation, equal loss (claim 1; the paper's Table 1)

Models: $models; $n_seeds training seeds each, $n samples per seed with ddpm at the full
N = $final_steps steps and ddim at $fast_steps. Every model here is trained with the edge model's
loss (the scaled noise, the paper's weighting) and today's recipe, so DDPM differs from edge in the
noise only: the equal-loss comparison (the paper's own comparison, which also changes the loss, is
the study `comparison`). Metrics against the test split in the dataset classifier's features; mean
± standard error over training seeds. The baselines `blur` (IHDM-style blurring) and `bluenoise`
(BNDM-style) share network, data and budget.

$table
$class_shares

![FD ($shown)](reproduction/unconditional/fd.png) ![SWD per band ($shown)](reproduction/unconditional/swd_per_level.png)
"""


@register
class Unconditional(Study):
    name = "unconditional"
    position = 20
    title = "Unconditional generation, equal loss (claim 1)"
    claims = (CLAIM,)
    summary = "FD / KID / precision-recall / SWD of every model at equal loss (ddpm@500, ddim@50; 3 seeds)"

    def runs(self, quick=False):
        budget = Budget.of(quick)
        return unconditional_runs(budget.datasets, budget.models, budget.seeds)

    def owns_evaluation(self, run_key, slug, quick=False):
        budget = Budget.of(quick)
        return super().owns_evaluation(run_key, slug, quick) and slug != budget.curve.slug and "sdedit" not in slug

    def run(self, root, out, quick):
        budget = Budget.of(quick)
        protocols = {f"{p.sampler}@{p.steps}": p for p in (budget.final, budget.fast)}
        rows, pending = [], []
        for dataset, model, seed, spec in trained_unconditional(budget, root):
            for sampler, protocol in protocols.items():
                try:
                    metrics = evaluate(spec, root, protocol, quick=quick)
                except Pending as missing:  # reported below; the other sampler's rows still count
                    pending.append(str(missing))
                    continue
                rows.append(metrics_row(metrics, dataset=dataset, model=model, seed=seed, sampler=sampler))
        if not rows:
            raise Pending(pending[0])
        summary = aggregate(rows, ("dataset", "model", "sampler"),
                            METRICS + tuple(k for k in rows[0] if k.startswith(("swd_", "class_"))))
        write_csv(rows, out / "per_seed.csv")
        write_csv(summary, out / "summary.csv")
        samplers = list(protocols)
        complete = [s for s in samplers if all(any(e["dataset"] == d and e["model"] == m and e["sampler"] == s
                                                   and e["seeds"] == len(budget.seeds) for e in summary)
                                               for d in budget.datasets for m in budget.models)]
        shown = complete[0] if complete else samplers[-1]
        bar_figure(summary, shown, "fd", out / "fd.png", f"FD (classifier features), {shown} sampler")
        swd_figure(summary, shown, out / "swd_per_level.png")
        claims = [self._claim(rows, budget, dataset, sampler, protocol)
                  for dataset in budget.datasets for sampler, protocol in protocols.items()]
        table = summary_table(
            sorted(summary, key=lambda s: (s["dataset"], samplers.index(s["sampler"]))),
            [("dataset", "dataset"), ("sampler", "sampler"), ("model", "model"), ("seeds", "seeds")],
            [
                ("FD", "fd", 1),
                ("KID x 1e3", "kid", 1e3),
                ("precision", "precision", 1),
                ("recall", "recall", 1),
                ("SWD mean x 1e3", "swd_mean", 1e3),
                ("confident", "confident", 1),
            ],
        )
        values = dict(models=", ".join(budget.models), n_seeds=len(budget.seeds), n=budget.final.n,
                      final_steps=budget.final.steps, fast_steps=budget.fast.steps, table=lines(table),
                      class_shares=lines(class_share_table(summary, budget.datasets, shown)), shown=shown)
        write_section(out, TEMPLATE, values, claims, {"rows": rows, "summary": summary, "pending": pending}, pending)
        return summary

    @staticmethod
    def _claim(rows, budget, dataset, sampler, protocol):
        """Edge against DDPM on the training seeds both have (all, or the first ones so far)."""
        setting = f"{dataset}, {sampler}, {protocol.n} samples, equal loss"
        seeds = [
            seed
            for seed in budget.seeds
            if all(
                any(
                    r["dataset"] == dataset and r["sampler"] == sampler and r["model"] == m and r["seed"] == seed
                    for r in rows
                )
                for m in ("edge", "ddpm")
            )
        ]
        if len(seeds) < 2 or seeds != list(budget.seeds[:len(seeds)]):
            return claim_row(CLAIM, setting, PAPER, "evaluations still running", "pending", "-")
        if len(seeds) < len(budget.seeds):
            setting += f" (seeds {', '.join(map(str, seeds))} of {len(budget.seeds)}; the rest pending)"
        chosen = [r for r in rows if r["dataset"] == dataset and r["sampler"] == sampler and r["seed"] in seeds]
        entries = {e["model"]: e for e in aggregate(chosen, ("model",), ("fd",))}
        edge, ddpm = entries["edge"], entries["ddpm"]
        verdict, _, _ = compare(edge["fd"], edge["fd_se"], ddpm["fd"], ddpm["fd_se"])
        lower = 100 * (ddpm["fd"] - edge["fd"]) / ddpm["fd"]
        ours = (f"FD edge {pm(edge['fd'], edge['fd_se'])} vs DDPM {pm(ddpm['fd'], ddpm['fd_se'])} "
                f"(edge {abs(lower):.0f}% {'lower' if lower > 0 else 'higher'})")
        return claim_row(CLAIM, setting, PAPER, ours, verdict, "[fd.png](reproduction/unconditional/fd.png)")


def swd_figure(summary, sampler, path):
    datasets = list(dict.fromkeys(s["dataset"] for s in summary))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.8 * len(datasets), 3.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        entries = [s for s in summary if s["dataset"] == dataset and s["sampler"] == sampler]
        levels = sorted(k for k in entries[0] if k.startswith("swd_") and k[4:].isdigit())
        width = 0.8 / len(entries)
        for i, entry in enumerate(entries):
            ax.bar(np.arange(len(levels)) + i * width, [1e3 * entry[k] for k in levels], width,
                   yerr=[1e3 * entry[f"{k}_se"] if np.isfinite(entry[f"{k}_se"]) else 0 for k in levels],
                   label=entry["model"], capsize=2)
        ax.set_xticks(np.arange(len(levels)) + 0.4 - width / 2, [f"L{i}" for i in range(len(levels) - 1)] + ["res."])
        ax.set_title(f"{dataset}: SWD per band (finest left)", fontsize=9)
        ax.set_ylabel("SWD x 1e3")
        ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=90)
