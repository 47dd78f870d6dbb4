"""Claim 5: the transition point t_phi and a time-varying edge sensitivity kappa. The edge model on
the band dataset with other t_phi and a constant kappa, against the paper's settings."""
import numpy as np

from sde_edge.experiments.evaluate import evaluate
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.report import aggregate, compare, pm, summary_table
from sde_edge.experiments.runs import RunSpec, unconditional_run
from sde_edge.experiments.studies.common import METRICS, Budget, ensure_trained_spec, lines, metrics_row, write_section
from sde_edge.figures import plt, save_figure
from sde_edge.tables import write_csv

SEEDS = (0, 1)
PAPER_VARIANT = "t_phi 0.5, kappa linear (the paper)"
CLAIMS = {"(5a) transition point": "t_phi = 0.5 (50/50) works best",
          "(5b) edge sensitivity": "a time-varying (linear) kappa beats a constant one"}
TEMPLATE = """
## Ablation: transition point and edge sensitivity (claim 5)

The edge model on $dataset with t_phi in {$t_phis} and a constant kappa at $kappas against the
linear one; $n_seeds training seeds each, $sampler@$steps, $n samples.

![ablation](reproduction/ablation/ablation.png)

$table
"""


def ablation_variants(t_phis, kappas):
    """label -> (key tag, overrides) of the edge model's ablated variants, the paper's settings first
    (tag None: the unconditional edge run)."""
    variants = {PAPER_VARIANT: (None, {})}
    variants.update({f"t_phi {t:g}": (f"tphi{t:g}", {"diffusion.t_phi": t}) for t in t_phis})
    variants.update({f"kappa constant {k:g}": (f"kappa{k:g}", {"diffusion.kappa_schedule": "constant",
                                                                "diffusion.kappa_max": k}) for k in kappas})
    return variants


def ablation_run(dataset, variant, seed):
    tag, overrides = variant
    if tag is None:
        return unconditional_run(dataset, "edge", seed)
    return RunSpec(f"{dataset}-edge-{tag}-s{seed}", f"{dataset}_edge.py", seed, overrides)


@register
class Ablation(Study):
    name = "ablation"
    position = 60
    title = "Ablation: transition point and edge sensitivity (claim 5)"
    claims = tuple(CLAIMS)
    summary = "the edge model with t_phi 0.25 / 0.75 and a constant kappa against the paper's settings (2 seeds)"

    def runs(self, quick=False):
        """The ablation's own trainings (the paper's variant is an unconditional run)."""
        budget = Budget.of(quick)
        variants = list(ablation_variants(budget.t_phis, budget.kappas).values())[1:]
        return [ablation_run(budget.band_dataset, variant, s) for variant in variants for s in SEEDS]

    def run(self, root, out, quick):
        budget = Budget.of(quick)
        protocol, dataset = budget.fast, budget.band_dataset
        rows = []
        for label, variant in ablation_variants(budget.t_phis, budget.kappas).items():
            for seed in SEEDS:
                spec = ensure_trained_spec(ablation_run(dataset, variant, seed), root, quick)
                rows.append(metrics_row(evaluate(spec, root, protocol, quick=quick), variant=label, seed=seed))
        summary = aggregate(rows, ("variant",), METRICS)
        write_csv(rows, out / "per_seed.csv")
        write_csv(summary, out / "summary.csv")
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.bar([s["variant"].replace(", ", "\n") for s in summary], [s["fd"] for s in summary],
               yerr=[np.nan_to_num(s["fd_se"]) for s in summary], capsize=4)
        ax.set_ylabel("FD")
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"{dataset}, edge-preserving variants ({protocol.sampler}@{protocol.steps})", fontsize=9)
        save_figure(fig, out / "ablation.png", dpi=90)
        by = {s["variant"]: s for s in summary}
        others = {"(5a) transition point": [f"t_phi {t:g}" for t in budget.t_phis],
                  "(5b) edge sensitivity": [f"kappa constant {k:g}" for k in budget.kappas]}
        claims = [_claim(name, by, others[name], dataset) for name in CLAIMS]
        table = summary_table(summary, [("variant", "variant")],
                              [("FD", "fd", 1), ("KID x 1e3", "kid", 1e3), ("precision", "precision", 1),
                               ("recall", "recall", 1), ("confident", "confident", 1)])
        values = dict(dataset=dataset, t_phis=", ".join(f"{t:g}" for t in sorted(budget.t_phis + (0.5,))),
                      kappas=" and ".join(f"{k:g}" for k in budget.kappas), n_seeds=len(SEEDS),
                      sampler=protocol.sampler, steps=protocol.steps, n=protocol.n, table=lines(table))
        write_section(out, TEMPLATE, values, claims, {"rows": rows, "summary": summary})
        return summary


def _claim(name, by, others, dataset):
    """The paper's variant must beat every other one by two standard errors."""
    paper = by[PAPER_VARIANT]
    verdicts = [compare(paper["fd"], paper["fd_se"], by[o]["fd"], by[o]["fd_se"])[0] for o in others]
    verdict = ("reproduced" if all(v == "reproduced" for v in verdicts) else
               "not reproduced" if any(v == "not reproduced" for v in verdicts) else "inconclusive")
    ours = (f"FD {pm(paper['fd'], paper['fd_se'])} (paper's) vs "
            + ", ".join(f"{o}: {pm(by[o]['fd'], by[o]['fd_se'])}" for o in others))
    return claim_row(name, f"{dataset}, {len(SEEDS)} seeds", CLAIMS[name], ours, verdict,
                     "[ablation.png](reproduction/ablation/ablation.png)")
