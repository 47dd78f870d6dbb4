"""The sample-quality report behind ``sde-edge eval-samples``: every metric in one dict, written
as metrics.json with a sample grid and a bar plot of SWD per band."""
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from sde_edge.figures import plt, save_figure, save_grid
from sde_edge.metrics.distances import frechet_distance, frechet_distance_stderr, kernel_distance, precision_recall
from sde_edge.metrics.swd import swd_per_level
from sde_edge.tensors import check_data_range

log = logging.getLogger(__name__)
CONFIDENCE = 0.9
NEAREST_K = 3


def check_samples(samples, reference, name="samples"):
    """Samples must be images in [-1, 1] of the reference's channels and size, more than k of them."""
    check_data_range(samples, name)
    if samples.shape[1:] != reference.shape[1:]:
        raise ValueError(f"{name} have shape {tuple(samples.shape[1:])} per image but the reference images have "
                         f"{tuple(reference.shape[1:])} (channels, height, width)")
    if len(samples) <= NEAREST_K:
        raise ValueError(
            f"{name}: {len(samples)} images; precision/recall (k = {NEAREST_K}) needs at least {NEAREST_K + 1}"
        )


def sample_quality(samples, reference, features, *, seed=0, progress=True):
    """Every metric of ``samples`` against ``reference`` (both (N, C, H, W) in [-1, 1])."""
    check_samples(samples, reference)
    started = time.perf_counter()
    generated_features = features(samples, progress=progress, desc="features (samples)")
    reference_features = features(reference, progress=progress, desc="features (reference)")
    kid, kid_std = kernel_distance(generated_features, reference_features, seed=seed)
    swd = swd_per_level(samples, reference, seed=seed)
    report = {
        "features": features.label,
        "n": len(samples),
        "n_reference": len(reference),
        "fd": frechet_distance(generated_features, reference_features),
        "fd_stderr": frechet_distance_stderr(generated_features, reference_features, seed=seed),
        "kid": kid,
        "kid_std": kid_std,
        **precision_recall(generated_features, reference_features, k=NEAREST_K),
        "swd": swd,
        "swd_mean": float(np.mean(swd)),
    }
    if hasattr(features, "probabilities"):
        probabilities = features.probabilities(samples)
        confidence, predicted = probabilities.max(1)
        counts = torch.bincount(predicted, minlength=probabilities.shape[1])
        report.update(confident=float((confidence >= CONFIDENCE).float().mean()), class_counts=counts.tolist(),
                      classes_covered=int((counts > 0).sum()))
    report["seconds"] = time.perf_counter() - started
    return report


def write_report(report, samples, out_dir):
    """metrics.json, samples.png and swd_per_level.png in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    grid = save_grid(samples[:64], out / "samples.png")
    fig, ax = plt.subplots(figsize=(4.5, 3))
    levels = len(report["swd"])
    labels = [f"L{i}" for i in range(levels - 1)] + ["residual"]
    ax.bar(labels, [1e3 * v for v in report["swd"]], color="tab:blue")
    ax.set_xlabel("Laplacian band (finest left)")
    ax.set_ylabel("SWD x 1e3")
    ax.set_title(f"n = {report['n']} vs {report['n_reference']} reference", fontsize=9)
    return out / "metrics.json", grid, save_figure(fig, out / "swd_per_level.png")


def summary_line(report):
    parts = [f"FD {report['fd']:.4g} ± {report['fd_stderr']:.2g}", f"KID {report['kid']:.3g} ± {report['kid_std']:.2g}",
             f"precision {report['precision']:.3f}", f"recall {report['recall']:.3f}",
             "SWD " + " / ".join(f"{1e3 * v:.3g}" for v in report["swd"]) + " (x1e3, finest first)"]
    if "confident" in report:
        parts.append(f"confident {report['confident']:.3f}")
    return f"[{report['features']}] " + ", ".join(parts)

