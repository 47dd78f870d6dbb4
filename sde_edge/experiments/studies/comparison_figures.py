"""The figures of the study ``comparison``: FD per arm with every training seed (paired across arms)
and FD against training iteration."""
import numpy as np

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
