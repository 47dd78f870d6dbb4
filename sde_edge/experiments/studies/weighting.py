"""Our own question (not a paper claim): does the likelihood weighting fix the edge model's bound?
The edge model (tau linear_ramp, so that the ODE likelihood exists) trained with the paper's and
with the likelihood weighting; FD, ODE bpd and bound bpd."""
import json
import math
from pathlib import Path

import numpy as np

from sde_edge.experiments.evaluate import evaluate, require_compute, write_json_atomically
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.report import aggregate, compare, pm, summary_table
from sde_edge.experiments.runs import RunSpec, workdir_of
from sde_edge.experiments.studies.common import Budget, ensure_trained_spec, lines, metrics_row, write_section
from sde_edge.nll_report import evaluate_nll, evaluation_images
from sde_edge.restore import load_run
from sde_edge.tables import write_csv

SEEDS = (0, 1)
CLAIM = "weighting (our question)"
TEMPLATE = """
## Loss weighting: paper against likelihood

The edge model (tau linear_ramp, so that the ODE likelihood exists) trained with the paper's
weighting and with the likelihood weighting; FD ($sampler@$steps), ODE bpd and bound bpd (N steps)
on the first $n_images test images.

$table

$reading
"""
WORSE_SAMPLES = ("Its samples are worse by more than two standard errors: the weight is largest on edge pixels early "
                 "in time, where sigma is tiny, while t is importance-sampled by the isotropic proposal only, so the "
                 "loss's variance stays high at this budget (the likelihood-against-sample-quality trade-off that "
                 "Song et al. 2021 report for isotropic noise, here sharper).")


def weighting_runs():
    return [RunSpec(f"digits-edge_ramp-{w}-s{s}", "digits_edge_ramp.py", s, {"training.weighting": w})
            for s in SEEDS for w in ("paper", "likelihood")]  # both weightings of a seed together


@register
class Weighting(Study):
    name = "weighting"
    position = 70
    title = "Loss weighting: paper against likelihood"
    claims = (CLAIM,)
    summary = "the edge model's bound and FD under the paper's and the likelihood weighting (digits, 2 seeds)"

    def runs(self, quick=False):
        return weighting_runs()

    def run(self, root, out, quick):
        protocol = Budget.of(quick).fast
        n_images = 16 if quick else 256
        rows = []
        for spec in weighting_runs():
            ensure_trained_spec(spec, root, quick)
            row = metrics_row(
                evaluate(spec, root, protocol, quick=quick),
                weighting=spec.overrides["training.weighting"],
                seed=spec.seed,
            )
            row.update(bits_per_dim(spec, root, n_images, quick))
            rows.append(row)
        summary = aggregate(rows, ("weighting",), ("fd", "ode_bpd", "vlb_bpd", "vlb_kl", "vlb_decoder"))
        write_csv(rows, out / "per_seed.csv")
        write_csv(summary, out / "summary.csv")
        by = {s["weighting"]: s for s in summary}
        paper, likelihood = by["paper"], by["likelihood"]
        verdict, _, _ = compare(
            likelihood["vlb_bpd"], likelihood["vlb_bpd_se"], paper["vlb_bpd"], paper["vlb_bpd_se"]
        )
        ours = "; ".join(
            f"{name} {pm(likelihood[k], likelihood[f'{k}_se'])} (likelihood) vs {pm(paper[k], paper[f'{k}_se'])} "
            "(paper)"
            for name, k in (("bound", "vlb_bpd"), ("ODE", "ode_bpd"), ("FD", "fd"))
        )
        claims = [claim_row(CLAIM, f"digits, tau linear_ramp, {len(SEEDS)} seeds",
                            "(not a paper claim) does the likelihood weighting fix the bound?", ours,
                            {"reproduced": "yes, the bound", "not reproduced": "no"}.get(verdict, verdict), "(table)")]
        table = summary_table(summary, [("weighting", "weighting")],
                              [("FD", "fd", 1), ("ODE bpd", "ode_bpd", 1), ("bound bpd", "vlb_bpd", 1),
                               ("bound's KL", "vlb_kl", 1), ("decoder", "vlb_decoder", 1)])
        values = dict(sampler=protocol.sampler, steps=protocol.steps, n_images=n_images, table=lines(table),
                      reading=reading(paper, likelihood))
        write_section(out, TEMPLATE, values, claims, {"rows": rows, "summary": summary})
        return summary


def bits_per_dim(spec, root, n_images, quick):
    """ODE and bound bpd of a run on the first test images, cached like ``evaluate``."""
    cache = Path(root) / "evals" / spec.key / f"bpd_n{n_images}.json"
    if not cache.exists():
        require_compute(f"{spec.key} bpd_n{n_images}", spec.key)
        run = load_run(workdir_of(spec, root))
        images = evaluation_images(run.config, "test", n_images)
        tolerance = 1e-3 if quick else 1e-5  # quick: a few-step smoke run, not a measurement
        nll_rows, _ = evaluate_nll(run.model, run.sde, images, method="both", batch_size=64, progress=False,
                                   steps=None if not quick else 20, rtol=tolerance, atol=tolerance)
        write_json_atomically({k: float(np.nanmean([r[k] for r in nll_rows]))
                               for k in ("ode_bpd", "vlb_bpd", "vlb_prior", "vlb_kl", "vlb_decoder")}, cache)
    return json.loads(cache.read_text())


def reading(paper, likelihood):
    """One paragraph on what the weighting table says (worded from its numbers)."""
    text = (f"The likelihood weighting (per pixel G^2 / sigma^4, the bound's own scale) changes the bound "
            f"{paper['vlb_bpd'] / likelihood['vlb_bpd']:.3g}-fold ({pm(paper['vlb_bpd'], paper['vlb_bpd_se'])} -> "
            f"{pm(likelihood['vlb_bpd'], likelihood['vlb_bpd_se'])} bpd). ")
    if likelihood["fd"] - paper["fd"] > 2 * math.hypot(likelihood["fd_se"] or 0, paper["fd_se"] or 0):
        text += WORSE_SAMPLES
    return text
