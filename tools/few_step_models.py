"""The few-step tables of several models side by side: one picture of each model's FD relative to
its own reference (--reference, ddpm@500) against NFE (the paired difference with two paired
standard errors, against the 10% line), and one table of the NFE to match, point and paired, per
model and series.

    python tools/few_step_models.py --tables OUT/digits_edge,OUT/shapes_edge --out OUT/models

Each folder is what ``tools/few_step.py --out`` wrote (its ``all/`` comparison is read; a folder
with ``results.csv`` at the top is read as that comparison itself).
"""
import math
from pathlib import Path

from absl import app, flags

from sde_edge.experiments.sampler_comparison import parse_reference, read_nfe_to_match, reference_value
from sde_edge.figures import nfe_axis, plt, save_figure
from sde_edge.tables import read_csv

_TABLES = flags.DEFINE_list("tables", None, "tools/few_step.py output folders, one per model.", required=True)
_OUT = flags.DEFINE_string("out", None, "Output folder (models.md, models.png).", required=True)
_REFERENCE = flags.DEFINE_string("reference", "ddpm@500", "The reference every table was paired with.")
_TOLERANCE = flags.DEFINE_float("tolerance", 0.10, "The relative band of the NFE to match.")


def _comparison(folder):
    folder = Path(folder)
    return folder / "all" if (folder / "all" / "results.csv").is_file() else folder


def _number(row, key):
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _panel(ax, name, rows, tolerance, reference):
    target = reference_value(rows, *reference, "fd")
    if target in (None, ""):
        raise app.UsageError(f"{name}: no {reference[0]}@{reference[1]} row in its comparison (--reference)")
    target = float(target)
    series = {}
    for row in rows:
        diff, se, nfe = _number(row, "fd_diff"), _number(row, "fd_diff_se"), _number(row, "nfe")
        if row["sampler"] == reference[0] or math.isnan(diff) or nfe > 64:
            continue
        series.setdefault(f"{row['sampler']} ({row['grid']})", []).append((nfe, diff / target, se / target))
    for k, (label, points) in enumerate(sorted(series.items())):
        nfe, ratio, error = zip(*sorted(points))
        nudge = 1 + 0.03 * (k - (len(series) - 1) / 2)
        ax.errorbar([n * nudge for n in nfe], ratio, yerr=[2 * e for e in error], marker="o", markersize=3,
                    capsize=2, elinewidth=0.8, label=label)
    ax.axhline(0.0, color="0.4", linewidth=1)
    ax.axhline(tolerance, color="0.2", linestyle="--", linewidth=1, label=f"+{tolerance:.0%}")
    nfe_axis(ax, [p[0] for points in series.values() for p in points])
    ax.set_yscale("symlog", linthresh=tolerance)
    ax.set_title(f"{name} ({reference[0]}@{reference[1]} FD {target:.3g})", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)


def _match_lines(name, folder, reference_label):
    """Table rows: per comparison (all, decisive) and series, the NFE to match (point, paired)."""
    lines = []
    for part in ("all", "decisive"):
        found = read_nfe_to_match(_comparison(folder) if part == "all" else Path(folder) / part)
        if found is None:
            continue
        point, paired, _ = found
        for series in sorted(point):
            if series.startswith(reference_label):
                continue
            lines.append(f"| {name} | {part} | {series} | {point[series] or 'none'} | "
                         f"{paired.get(series) or 'not resolved'} |")
    return lines


def main(argv):
    del argv
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    try:
        reference = parse_reference(_REFERENCE.value)
    except ValueError as error:
        raise app.UsageError(f"--reference: {error}") from None
    folders = [Path(folder) for folder in _TABLES.value]
    columns = min(3, len(folders))
    fig, axes = plt.subplots(math.ceil(len(folders) / columns), columns, figsize=(4.2 * columns, 3.4 *
                             math.ceil(len(folders) / columns)), squeeze=False)
    lines = ["| model | comparison | series | NFE to match (point) | NFE to match (paired) |", "|---|---|---|---|---|"]
    for ax, folder in zip(axes.flat, folders):
        name = folder.name.removesuffix("_table")
        _panel(ax, name, read_csv(_comparison(folder) / "results.csv"), _TOLERANCE.value, reference)
        lines += _match_lines(name, folder, reference[0])
    for ax in list(axes.flat)[len(folders):]:
        ax.set_visible(False)
    axes[0][0].set_ylabel(f"FD / FD({_REFERENCE.value}) - 1, paired (± 2 s.e.)")
    save_figure(fig, out / "models.png")
    (out / "models.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out / 'models.png'} and {out / 'models.md'}")
    return 0


if __name__ == "__main__":
    app.run(main)
