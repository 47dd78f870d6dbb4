"""Claim 4: stroke-guided generation with SDEdit. Stroke paintings of the test split, perturbed to
t0 by each model's forward process and sampled back; FD, precision / recall, class kept."""
import shutil

import numpy as np

from sde_edge.data.datasets import load_dataset
from sde_edge.experiments.evaluate import Pending, cache_path, evaluate
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.report import aggregate, compare, pm, summary_table
from sde_edge.experiments.runs import unconditional_run, unconditional_runs
from sde_edge.experiments.studies.common import Budget, lines, metrics_row, trained_unconditional, write_section
from sde_edge.figures import plt, save_figure
from sde_edge.tables import write_csv

CLAIM = "(4) stroke-guided SDEdit"
PAPER = "FID 39.1 vs 45.8 (CelebA), 56.1 vs 72.5 (Church); precision/recall kept"
TEMPLATE = """
## Stroke-guided generation with SDEdit (claim 4)

Stroke paintings of the test split (k-means to 3 grey levels, then a 0.5 px blur), perturbed to t0
by each model's forward process and sampled back with ddpm ($steps steps from t0). FD / precision /
recall against the test split; 'class kept' is the share of results the classifier labels like
their source; the low-resolution L2 compares 4x4 average-pooled result and source.

![FD against t0](reproduction/sdedit/fd_vs_t0.png)

$table

Read with care: at equal t0 the two processes have not destroyed the guide equally. Before
t_phi = 0.5 the edge process keeps the noise off the guide's edges, so its results stay closer to
their sources (the low-res L2 column), and the sources are test images, which the FD is measured
against. The paper compares at equal t0 too; a comparison at equal distance to the source (or
equal mean noise) would separate 'keeps the strokes' from 'denoises better'.

Examples at t0 = 0.5, training seed 0 (rows: source, stroke guide, result; edge then DDPM per
dataset):

$examples
"""
KEYS = ("fd", "kid", "precision", "recall", "class_preserved", "low_res_l2")


@register
class SDEditStudy(Study):
    name = "sdedit"
    position = 50
    title = "Stroke-guided generation with SDEdit (claim 4)"
    claims = (CLAIM,)
    summary = "SDEdit from stroke paintings at t0 = 0.3 / 0.5 / 0.7 (FD, class kept; 3 seeds)"

    def runs(self, quick=False):
        budget = Budget.of(quick)
        return unconditional_runs(budget.datasets, budget.models, budget.seeds)

    def owns_evaluation(self, run_key, slug, quick=False):
        return "sdedit" in slug

    def run(self, root, out, quick):
        budget = Budget.of(quick)
        datasets, rows, pending = budget.datasets, [], []
        for dataset, model, seed, spec in trained_unconditional(budget, root):
            test_size = len(load_dataset(spec.build_config(quick).data, "test"))
            for t0 in budget.t0s:
                try:
                    metrics = evaluate(spec, root, budget.sdedit(t0, test_size), quick=quick)
                except Pending as missing:  # a baseline's rows may follow later; the claim needs edge and DDPM
                    pending.append(str(missing))
                    continue
                rows.append(metrics_row(metrics, dataset=dataset, model=model, seed=seed, t0=t0))
        summary = [s for s in aggregate(rows, ("dataset", "model", "t0"), KEYS) if s["seeds"] == len(budget.seeds)]
        have = {(s["dataset"], s["model"], s["t0"]) for s in summary}
        if not all((d, m, t0) in have for d in datasets for m in ("edge", "ddpm") for t0 in budget.t0s):
            raise Pending(pending[0])
        write_csv(rows, out / "per_seed.csv")
        write_csv(summary, out / "summary.csv")
        fd_against_t0(summary, datasets, [m for m in budget.models if any(s["model"] == m for s in summary)],
                      out / "fd_vs_t0.png")
        claims = [_claim(summary, dataset, t0, budget) for dataset in datasets for t0 in budget.t0s]
        table = summary_table(sorted(summary, key=lambda s: (s["dataset"], s["t0"])),
                              [("dataset", "dataset"), ("t0", "t0"), ("model", "model")],
                              [("FD", "fd", 1), ("precision", "precision", 1), ("recall", "recall", 1),
                               ("class kept", "class_preserved", 1), ("low-res L2 to source", "low_res_l2", 1)])
        values = dict(steps=budget.sdedit(0.5, 10**9).steps, table=lines(table),
                      examples=" ".join(copy_examples(root, out, budget, quick)))
        write_section(out, TEMPLATE, values, claims, {"rows": rows, "summary": summary, "pending": pending}, pending)
        return summary


def _claim(summary, dataset, t0, budget):
    entries = {s["model"]: s for s in summary if s["dataset"] == dataset and s["t0"] == t0}
    edge, ddpm = entries["edge"], entries["ddpm"]
    verdict, _, _ = compare(edge["fd"], edge["fd_se"], ddpm["fd"], ddpm["fd_se"])
    ours = (f"FD edge {pm(edge['fd'], edge['fd_se'])} vs DDPM {pm(ddpm['fd'], ddpm['fd_se'])}; precision "
            f"{pm(edge['precision'], edge['precision_se'])} vs {pm(ddpm['precision'], ddpm['precision_se'])}, "
            f"recall {pm(edge['recall'], edge['recall_se'])} vs {pm(ddpm['recall'], ddpm['recall_se'])}; "
            f"class kept {pm(edge['class_preserved'], edge['class_preserved_se'])} vs "
            f"{pm(ddpm['class_preserved'], ddpm['class_preserved_se'])}")
    return claim_row(CLAIM, f"{dataset}, t0 = {t0:g}, ddpm@{budget.sdedit(t0, 10**9).steps}", PAPER, ours, verdict,
                     "[fd_vs_t0.png](reproduction/sdedit/fd_vs_t0.png)")


def fd_against_t0(summary, datasets, models, path):
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for model in models:
            points = sorted(
                (s["t0"], s["fd"], s["fd_se"]) for s in summary if s["dataset"] == dataset and s["model"] == model
            )
            if not points:
                continue
            t0s, means, ses = map(np.array, zip(*points))
            ax.errorbar(t0s, means, yerr=np.nan_to_num(ses), marker="o", capsize=3, label=model)
        ax.set_xlabel("t0 (hijack time)")
        ax.set_ylabel("FD")
        ax.set_title(f"{dataset}: SDEdit from stroke paintings", fontsize=9)
        ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=90)


def copy_examples(root, out, budget, quick):
    """Rows source / guide / result of seed 0 at the paper's t0, copied beside the section."""
    examples = []
    for dataset in budget.datasets:
        for model in ("edge", "ddpm"):
            spec = unconditional_run(dataset, model, budget.seeds[0])
            test_size = len(load_dataset(spec.build_config(quick).data, "test"))
            grid = cache_path(spec, root, budget.sdedit(0.5, test_size)).with_suffix(".png")
            if grid.exists():
                shutil.copy2(grid, out / f"examples_{dataset}_{model}.png")
                examples.append(f"![{dataset}, {model}](reproduction/sdedit/examples_{dataset}_{model}.png)")
    return examples
