"""What the studies share: the budget, the per-seed row of a metrics dict, the class-share table,
training on demand and the report section's template. Edge = the paper's settings (tau linear,
t_phi 0.5, kappa linear); DDPM = tau isotropic; same network, data, budget, seeds and sampler for
every model of a study."""
import math
from dataclasses import dataclass
from string import Template

import numpy as np

from sde_edge.data.shapes import CLASSES as SHAPE_CLASSES
from sde_edge.experiments.evaluate import Protocol, require_compute
from sde_edge.experiments.kept import kept_evaluation
from sde_edge.experiments.report import pm, write_study
from sde_edge.experiments.runs import (
    BLUR_SIGMAS,
    CONSTANT_KAPPAS,
    SEEDS,
    T_PHIS,
    ensure_trained,
    is_trained,
    raise_if_diverged,
    unconditional_run,
)
from sde_edge.figures import plt, save_figure

METRICS = ("fd", "kid", "precision", "recall", "swd_mean", "confident")
MODELS = ("edge", "ddpm", "blur", "bluenoise")
DATASETS = ("digits", "shapes")
T0S = (0.3, 0.5, 0.7)  # SDEdit's hijack times


@dataclass(frozen=True)
class Budget:
    """Datasets, seeds, variants, samples and steps of the studies. ``Budget.of(quick=True)`` shrinks
    them all (digits only, two seeds, one variant per ablation) so that the tests run every study
    end to end in seconds."""

    quick: bool
    datasets: tuple
    band_dataset: str  # the frequency and ablation studies' data: sharp edges
    models: tuple
    seeds: tuple
    blur_sigmas: tuple
    t_phis: tuple
    kappas: tuple
    t0s: tuple
    final: Protocol  # the paper's sampler at the full N
    fast: Protocol  # ddim at 50 steps: every final comparison
    curve: Protocol  # cheaper, for FD at every kept checkpoint (convergence, frequency)
    sdedit_steps: int
    sdedit_images: int

    @classmethod
    def of(cls, quick):
        if quick:
            return cls(True, ("digits",), "digits", MODELS[:2], SEEDS[:2], BLUR_SIGMAS[1:2], T_PHIS[:1],
                       CONSTANT_KAPPAS[:1], T0S[1:2], Protocol("ddpm", 10, 32), Protocol("ddim", 5, 32),
                       Protocol("ddim", 5, 32), 5, 16)
        return cls(False, DATASETS, "shapes", MODELS, SEEDS, BLUR_SIGMAS, T_PHIS, CONSTANT_KAPPAS, T0S,
                   Protocol("ddpm", 500, 1000), Protocol("ddim", 50, 1000), Protocol("ddim", 25, 500), 50, 1000)

    def sdedit(self, t0, n):
        return Protocol("ddpm", self.sdedit_steps, min(n, self.sdedit_images), t0=t0)


def metrics_row(metrics, **labels):
    """One CSV row: the labels, the scalar metrics, SWD per band and the classifier's label shares."""
    row = dict(labels, features=metrics.get("features", ""))  # the feature space the metrics are in
    row.update({k: metrics.get(k) for k in ("fd", "fd_stderr", "kid", "kid_std", "precision", "recall", "density",
                                             "coverage", "swd_mean", "confident", "class_preserved", "low_res_l2")
                if k in metrics})
    for level, value in enumerate(metrics.get("swd", [])):
        row[f"swd_{level}"] = value
    counts = metrics.get("class_counts", [])
    for label, count in enumerate(counts):  # mode coverage: the classifier's label shares
        row[f"class_{label}"] = count / max(1, sum(counts))
    return row


def class_share_table(summary, datasets, sampler, label_key="model"):
    """Markdown: the classifier's label shares of each model's samples (mode coverage), per dataset."""
    lines = []
    for dataset in datasets:
        entries = [e for e in summary if e.get("dataset", dataset) == dataset and e["sampler"] == sampler]
        labels = sorted(int(k[6:]) for k in entries[0] if k.startswith("class_") and k[6:].isdigit()
                        and np.isfinite(entries[0][k])) if entries else []
        if not labels:
            continue
        names = SHAPE_CLASSES if dataset == "shapes" else [str(i) for i in labels]
        lines += ["", f"Class shares of the samples, {dataset}, {sampler} (the data are balanced: "
                  f"{1 / len(labels):.3g} each):", "",
                  "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(labels)]
        lines += [f"| {e[label_key]} | " + " | ".join(pm(e[f"class_{i}"], e[f"class_{i}_se"], 2) for i in labels) + " |"
                  for e in entries]
    return lines


def ensure_trained_spec(spec, root, quick):
    """The run, trained first if it is not (``Pending`` when computing is off)."""
    if not is_trained(spec, root, quick):
        raise_if_diverged(spec, root, quick)  # a kept result, also when nothing may be computed
        require_compute(f"training {spec.key}", spec.key)
        ensure_trained(spec, root, quick=quick, progress=False)
    return spec


def trained_unless_kept(spec, root, quick, protocols, step=None):
    """The run, trained first (``ensure_trained_spec``) unless every evaluation of ``protocols`` at
    ``step`` (``None``: its last checkpoint) is kept: then neither it nor its checkpoints are needed."""
    if all(kept_evaluation(spec, protocol.slug, step, quick) is not None for protocol in protocols):
        return spec
    return ensure_trained_spec(spec, root, quick)


def trained_unconditional(budget, root, models=None):
    """(dataset, model, seed, spec) of every unconditional run of the budget, trained if need be."""
    for dataset in budget.datasets:
        for model in models or budget.models:
            for seed in budget.seeds:
                yield (
                    dataset,
                    model,
                    seed,
                    ensure_trained_spec(unconditional_run(dataset, model, seed), root, budget.quick),
                )


def pending_note(pending):
    """The section's line on evaluations not run yet ('' when there are none)."""
    if not pending:
        return ""
    return (f"\n\nPending ({len(pending)} trainings or evaluations not on disk yet): " + "; ".join(pending[:6])
            + ("; ..." if len(pending) > 6 else ""))


def write_section(out, template, values, claims, results, pending=()):
    """Fill the study's Markdown ``template`` ($names, string.Template) with ``values`` and write the
    section, the claim rows and the results (report.write_study)."""
    text = Template(template.strip()).substitute(values) + pending_note(list(pending))
    write_study(out, text, claims, results)
    return text


def lines(rows):
    """Markdown lines joined, for a template value."""
    return "\n".join(rows)


def bar_figure(summary, sampler, metric, path, title, label_key="model"):
    """One bar per model (or arm) and panel per dataset, with standard-error bars."""
    datasets = list(dict.fromkeys(s.get("dataset", "") for s in summary))
    labels = list(dict.fromkeys(s[label_key] for s in summary))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        entries = [next((s for s in summary if s.get("dataset", "") == dataset and s[label_key] == m
                         and s["sampler"] == sampler), None) for m in labels]
        shown = [(m, e) for m, e in zip(labels, entries) if e is not None]
        ax.bar([m for m, _ in shown], [e[metric] for _, e in shown],
               yerr=[0 if math.isnan(e[f"{metric}_se"]) else e[f"{metric}_se"] for _, e in shown], capsize=4,
               color="tab:blue")
        ax.set_title(f"{dataset}", fontsize=9)
        ax.set_ylabel(metric)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=90)
