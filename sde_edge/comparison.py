"""Sampler comparison: samplers x step counts -> NFE, wall time and quality, as CSV, a markdown
table, a plot of quality against NFE and sample grids (``tools/compare_samplers.py``).

Quality is measured by a ``Judge``: with the mixture oracle, the share of samples within
RMSE 0.05 of a mode and the chi-square error of the mode frequencies; with a digits model,
the digits classifier's confident share and a Frechet distance in its feature space.
"""
import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import chisquare

from sde_edge.figures import plt, save_grid
from sde_edge.sampling import sample


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler and its options, written ``name`` or ``name:method`` (``torchsde:srk``)."""

    name: str
    options: dict = field(default_factory=dict, hash=False)

    @classmethod
    def parse(cls, text):
        name, _, method = text.partition(":")
        return cls(name, {"method": method} if method else {})

    @property
    def label(self):
        return ":".join([self.name, *map(str, self.options.values())])


class OracleJudge:
    """Mode coverage against the mixture oracle's images and weights."""

    primary, lower_is_better = "chi2", True

    def __init__(self, images, weights, radius=0.05):
        self.images, self.weights, self.radius = images, np.asarray(weights, dtype=np.float64), radius

    def __call__(self, samples):
        rmse = (samples[:, None].cpu() - self.images[None].cpu()).square().flatten(2).mean(-1).sqrt()
        nearest_rmse, nearest = rmse.min(1)
        near = nearest_rmse < self.radius
        counts = torch.bincount(nearest[near], minlength=len(self.images)).double().numpy()
        expected = counts.sum() * self.weights / self.weights.sum()
        test = chisquare(counts, expected) if counts.sum() > 0 else None
        return {"near_mode": near.double().mean().item(),
                "chi2": float(test.statistic) if test else float("inf"),
                "chi2_p": float(test.pvalue) if test else 0.0}


class DigitsJudge:
    """The digits classifier's confident share and the Frechet distance in its features."""

    primary, lower_is_better = "frechet", True

    def __init__(self):
        from sde_edge.metrics import train_digits_classifier

        self.classifier, self.accuracy = train_digits_classifier()

    def __call__(self, samples):
        from sde_edge.metrics import digit_quality

        quality = digit_quality(self.classifier, samples)
        return {"confident": quality.confident_fraction, "frechet": quality.frechet_distance}


def run_comparison(model, sde, shape, specs, step_counts, judge, *, seed=0, ode_tolerances=(1e-2, 1e-3, 1e-4, 1e-5),
                   x_init=None, out_dir=None, progress=True):
    """Every spec at every step count (``ode``: every tolerance instead); returns a list of row dicts."""
    rows = []
    for spec in specs:
        settings = [(1, {"rtol": tol, "atol": tol}) for tol in ode_tolerances] if spec.name == "ode" else [(k, {}) for k in step_counts]
        for steps, extra in settings:
            generator = torch.Generator().manual_seed(seed)
            row = {"sampler": spec.label, "steps": steps if spec.name != "ode" else "", "tolerance": extra.get("rtol", "")}
            try:
                start = time.perf_counter()
                result = sample(spec.name, model, sde, shape, steps=steps, generator=generator, x_init=x_init,
                                progress=progress, **spec.options, **extra)
                row.update(nfe=result.nfe, seconds=time.perf_counter() - start, **judge(result.samples))
                last_samples = result.samples
            except ValueError as refusal:  # e.g. tau='linear' in a continuous-time sampler
                row.update(nfe="", seconds="", error=str(refusal).split(".")[0])
                last_samples = None
            rows.append(row)
        if out_dir is not None and last_samples is not None:
            save_grid(last_samples[:64], Path(out_dir) / f"samples_{spec.label.replace(':', '_')}.png")
    return rows


def write_csv(rows, path):
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def markdown_table(rows):
    keys = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_quality_vs_nfe(rows, metric, path, title=""):
    fig, ax = plt.subplots(figsize=(6, 4))
    for label in dict.fromkeys(row["sampler"] for row in rows):
        points = sorted((row["nfe"], row[metric]) for row in rows if row["sampler"] == label and metric in row)
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("NFE (network evaluations)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def nfe_to_match(rows, reference_label, reference_steps, metric, tolerance=0.10):
    """For each sampler, the smallest NFE whose ``metric`` is within ``tolerance`` (relative) of
    the reference sampler at ``reference_steps``, or None."""
    reference = [r for r in rows if r["sampler"] == reference_label and r.get("steps") == reference_steps and metric in r]
    if not reference:
        return {}
    target = reference[0][metric]
    matches = {}
    for label in dict.fromkeys(row["sampler"] for row in rows):
        candidates = [r["nfe"] for r in rows if r["sampler"] == label and metric in r and r[metric] <= target * (1 + tolerance)]
        matches[label] = min(candidates) if candidates else None
    return matches

