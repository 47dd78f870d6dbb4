"""Claim 3 (the paper's Appendix B protocol): edge learns the low-to-mid frequency bands better.
Both models trained on the band dataset blurred at several widths; FD at every kept checkpoint."""
import math

import numpy as np

from sde_edge.experiments.evaluate import evaluate
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.report import pm
from sde_edge.experiments.runs import RunSpec, milestone_steps, unconditional_run
from sde_edge.experiments.studies.common import Budget, ensure_trained_spec, metrics_row, write_section
from sde_edge.figures import plt, save_figure
from sde_edge.tables import write_csv

CLAIM = "(3) low-to-mid frequencies"
TEMPLATE = """
## Frequency bands (claim 3; the paper's Appendix B protocol)

Both models trained on the $dataset dataset Gaussian-blurred by $bands px (one training seed per
band: the standard errors are bootstrap errors of FD over the samples), FD ($sampler@$steps,
$n samples) against the test split of the same band at every kept checkpoint. The heatmap is
FD(DDPM) - FD(edge): positive favours edge.

![heatmap](reproduction/frequency/heatmap.png)
"""


def frequency_run(dataset, model, blur_sigma, seed=0):
    """The run on ``dataset`` blurred by ``blur_sigma`` pixels; the unblurred band is the unconditional run."""
    if blur_sigma == 0:
        return unconditional_run(dataset, model, seed)
    return RunSpec(f"{dataset}-{model}-blur{blur_sigma:g}-s{seed}", f"{dataset}_{model}.py", seed,
                   {"data.blur_sigma": blur_sigma})


@register
class Frequency(Study):
    name = "frequency"
    position = 40
    title = "Frequency bands (claim 3)"
    claims = (CLAIM,)
    summary = "edge minus DDPM in FD per blur band and checkpoint (shapes, one seed per band)"

    def runs(self, quick=False):
        budget = Budget.of(quick)
        return [frequency_run(budget.band_dataset, m, sigma) for sigma in budget.blur_sigmas
                for m in ("edge", "ddpm")]

    def run(self, root, out, quick):
        budget = Budget.of(quick)
        protocol, dataset = budget.curve, budget.band_dataset
        bands = (0.0,) + budget.blur_sigmas
        rows = []
        for sigma in bands:
            for model in ("edge", "ddpm"):
                spec = ensure_trained_spec(frequency_run(dataset, model, sigma), root, quick)
                for step in milestone_steps(spec, root, quick):
                    metrics = evaluate(spec, root, protocol, step=step, quick=quick)
                    rows.append(metrics_row(metrics, band_sigma=sigma, model=model, iteration=step))
        write_csv(rows, out / "per_checkpoint.csv")
        iterations = sorted({r["iteration"] for r in rows})
        table = {(r["band_sigma"], r["model"], r["iteration"]): r for r in rows}
        difference = np.array([[table[(s, "ddpm", it)]["fd"] - table[(s, "edge", it)]["fd"] for it in iterations]
                               for s in bands])
        se = np.array([[math.hypot(table[(s, "ddpm", it)]["fd_stderr"], table[(s, "edge", it)]["fd_stderr"])
                        for it in iterations] for s in bands])
        heatmap(difference, bands, iterations, out / "heatmap.png")
        claims = []
        for i, sigma in enumerate(bands):
            z = difference[i] / se[i]
            ahead, behind = int((z > 2).sum()), int((z < -2).sum())
            half = len(iterations) / 2
            verdict = "reproduced" if ahead > half else "not reproduced" if behind > half else "inconclusive"
            claims.append(
                claim_row(
                    CLAIM,
                    f"{dataset} blurred by {sigma:g} px, seed 0",
                    "edge learns the low-to-mid bands better (App. B)",
                    f"edge ahead by > 2 s.e. at {ahead}/{len(iterations)} checkpoints, behind at {behind}; "
                    f"final FD(DDPM) - FD(edge) = {pm(difference[i, -1], se[i, -1])}",
                    verdict,
                    "[heatmap.png](reproduction/frequency/heatmap.png)",
                )
            )
        values = dict(dataset=dataset, bands=", ".join(f"{s:g}" for s in bands), sampler=protocol.sampler,
                      steps=protocol.steps, n=protocol.n)
        write_section(
            out, TEMPLATE, values, claims, {"rows": rows, "difference": difference.tolist(), "se": se.tolist()}
        )
        return rows


def heatmap(difference, bands, iterations, path):
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(iterations), 0.6 + 0.6 * len(bands)))
    limit = np.abs(difference).max() or 1.0
    image = ax.imshow(difference, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(bands)):
        for j in range(len(iterations)):
            ax.text(j, i, f"{difference[i, j]:.2g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(iterations)), iterations, fontsize=7)
    ax.set_yticks(range(len(bands)), [f"blur {s:g} px" for s in bands], fontsize=7)
    ax.set_xlabel("iteration")
    ax.set_title("FD(DDPM) - FD(edge): blue favours edge", fontsize=9)
    fig.colorbar(image)
    return save_figure(fig, path, dpi=90)
