"""The figures of the study ``comparison``: FD per arm with every training seed (paired across arms),
FD against training iteration, and E's samples beside D's."""
import numpy as np
from PIL import Image

from sde_edge.experiments.evaluate import cache_path
from sde_edge.experiments.kept import final_step, kept_picture, kept_picture_note
from sde_edge.experiments.studies import comparison_runs as cr
from sde_edge.figures import plt, save_figure


def paired_fd_figure(summary, rows, sampler, path):
    """One panel per setting: each arm's mean FD over seeds (bar, one standard error: the study's
    ``summary``), each seed's FD (dot, from ``rows``), and a thin line joining one training seed across
    the arms, so a reader sees the pairing the verdicts read (a difference shared by every seed, or a
    spread that hides it)."""
    mine = [r for r in rows if r["sampler"] == sampler]
    settings = list(dict.fromkeys(r["setting"] for r in mine))
    width = sum(1.4 + 1.0 * len({r["arm"] for r in mine if r["setting"] == s}) for s in settings)
    fig, axes = plt.subplots(1, len(settings), figsize=(max(3.4, width), 3.2), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        here = [r for r in mine if r["setting"] == setting]
        arms = list(dict.fromkeys(r["arm"] for r in here))
        bars = [next(e for e in summary if (e["setting"], e["arm"], e["sampler"]) == (setting, arm, sampler))
                for arm in arms]
        ax.bar(range(len(arms)), [e["fd"] for e in bars], yerr=[np.nan_to_num(e["fd_se"]) for e in bars], capsize=4,
               color="tab:blue", alpha=0.35)
        for seed in sorted({r["seed"] for r in here}):
            points = [(i, r["fd"]) for i, arm in enumerate(arms) for r in here if r["arm"] == arm and r["seed"] == seed]
            ax.plot(*zip(*points), color="0.3", lw=0.7, marker="o", ms=3.5, alpha=0.8)
        ax.set_xticks(range(len(arms)), arms, fontsize=8)
        ax.set_title(f"{setting}, {sampler}", fontsize=9)
        ax.set_ylabel("FD (classifier features)")
    fig.suptitle("FD per arm; a line joins one training seed", fontsize=9)
    return save_figure(fig, path, dpi=90)


def convergence_figure(curve, path):
    """Mean FD over seeds against iteration, one line per arm, the seeds as dots."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for i, arm in enumerate(dict.fromkeys(r["arm"] for r in curve)):
        mine = [r for r in curve if r["arm"] == arm]
        steps = sorted({r["iteration"] for r in mine})
        ax.plot(steps, [np.mean([r["fd"] for r in mine if r["iteration"] == s]) for s in steps], marker="o",
                color=f"C{i}", label=arm)
        ax.scatter([r["iteration"] for r in mine], [r["fd"] for r in mine], color=f"C{i}", s=8, alpha=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("FD (ddim@50, 500 samples)")
    ax.set_title("The comparison's arms against training time", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=90)


def sample_pair_figures(settings, root, protocol, out, quick=False):
    """Per setting with E and D, the first 64 samples of training seed 0 under ``protocol`` (the verdict
    sampler), E's beside D's, as ``samples_<setting>.png``: both drew from one sampling seed, so a cell
    of one grid starts from the same prior noise as the same cell of the other. The grids come from the
    evaluations on disk, kept beside the runs' records (``kept_picture``), so the figures outlive the
    trainings root. Returns (figure, the notes of its pictures: ``kept_picture_note``) per figure written."""
    figures = []
    for setting in settings:
        if not {"E", "D"} <= set(setting.arms):
            continue
        specs = {arm: cr.run_of(setting, arm, setting.seeds[0]) for arm in ("E", "D")}
        grids = [_grid(spec, root, protocol, quick) for spec in specs.values()]
        if None not in grids:
            notes = [f"{arm}: {note}" for arm, spec in specs.items()
                     if (note := kept_picture_note(spec, protocol.slug, quick))]
            figures.append((_pair_figure(setting.name, grids, protocol, out / f"samples_{setting.name}.png"), notes))
    return figures


def _grid(spec, root, protocol, quick):
    """The run's final checkpoint's grid under ``protocol``: from its evaluation on disk, else kept."""
    grid = cache_path(spec, root, protocol, step=final_step(spec, quick)).with_suffix(".png")
    return kept_picture(spec, protocol.slug, grid if grid.exists() else None, quick)


def _pair_figure(setting, grids, protocol, path):
    fig, axes = plt.subplots(1, 2, figsize=(11.2, 6.0))  # each grid (530 px) at about its own size
    for ax, arm, grid in zip(axes, ("E", "D"), grids):
        pixels = np.asarray(Image.open(grid))
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{arm}: {cr.ARMS[arm].description}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{setting}, training seed 0, {protocol.sampler}@{protocol.steps}: the first {min(64, protocol.n)} "
                 f"of {protocol.n} samples, one sampling seed for both", fontsize=9)
    return save_figure(fig, path, dpi=100)
