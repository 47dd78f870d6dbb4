"""The picture of a sampler comparison: quality against NFE per sampler and grid, with its standard
errors, and (when the rows carry paired differences to a reference) the paired difference with the
band the paired rule of ``sampler_comparison.nfe_to_match_paired`` reads."""
import math

from sde_edge.experiments.sampler_comparison import is_reference_row, parse_reference
from sde_edge.figures import nfe_axis, plt, save_figure

_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (1, 3)), "v")]


def _number(value):
    """A float from a row's cell (rows read back from a CSV hold strings; empty cells are None)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _series(rows, key, error_key):
    """{(sampler, grid): [(nfe, value, error)]} for the rows that have ``key``, sorted by NFE."""
    series = {}
    for row in rows:
        value, nfe = _number(row.get(key)), _number(row.get("nfe"))
        if value is None or nfe is None or not math.isfinite(value):
            continue
        error = _number(row.get(error_key)) or 0.0
        series.setdefault((row["sampler"], row["grid"]), []).append((nfe, value, error))
    return {label: sorted(points) for label, points in series.items()}


def _draw(ax, series, samplers, grids, error_scale, positive):
    """One line per (sampler, grid): colour per sampler, style per grid; the labels are nudged apart
    along the (logarithmic) NFE axis so that their error bars do not hide each other."""
    for k, (label, points) in enumerate(series.items()):
        if positive:
            points = [p for p in points if p[1] > 0]
        if not points:
            continue
        nudge = 1 + 0.025 * (k - (len(series) - 1) / 2)
        nfe, value, error = zip(*points)
        if positive:  # a bar below zero cannot be drawn on a log axis: cut it at a tenth of the value
            lower = [min(error_scale * e, 0.9 * v) for v, e in zip(value, error)]
        else:
            lower = [error_scale * e for e in error]
        line, marker = _STYLES[grids.index(label[1]) % len(_STYLES)]
        ax.errorbar([n * nudge for n in nfe], value, yerr=[lower, [error_scale * e for e in error]],
                    linestyle=line, marker=marker, markersize=4, capsize=2, elinewidth=0.8,
                    color=f"C{samplers.index(label[0]) % 10}", label=f"{label[0]} ({label[1]})")


def plot_quality_vs_nfe(rows, metric, path, title="", reference=None, tolerance=0.10, z=2.0):
    """``metric`` (± one standard error, where the rows have ``<metric>_stderr``) against NFE, both
    axes logarithmic (one bad point does not flatten the rest). ``reference`` = (label, value) draws
    the target and its ``tolerance`` band (what ``nfe_to_match`` counts). Rows with ``fd_diff`` get a
    second panel: FD minus the reference's, paired, ± ``z`` paired standard errors, against the line at
    ``tolerance`` x the reference's FD: a setting whose whole bar is below that line is within the
    tolerance *and resolved* (``nfe_to_match_paired``)."""
    samplers = list(dict.fromkeys(row["sampler"] for row in rows))
    grids = list(dict.fromkeys(row["grid"] for row in rows))
    others = [row for row in rows if not _is_reference(row, reference)]  # its difference to itself is 0
    paired = _series(others, "fd_diff", "fd_diff_se") if metric == "fd" and reference is not None else {}
    fig, axes = plt.subplots(1, 2 if paired else 1, figsize=(11.5 if paired else 6.5, 4.2), squeeze=False)
    ax = axes[0][0]
    _draw(ax, _series(rows, metric, f"{metric}_stderr"), samplers, grids, 1.0, positive=True)
    if reference is not None:
        name, value = reference
        ax.axhspan(value, value * (1 + tolerance), color="0.85", zorder=0, label=f"{name} (+{tolerance:.0%})")
        ax.axhline(value, color="0.4", linewidth=1)
    ax.set_yscale("log")
    ax.set_ylabel(f"{metric} (± 1 s.e.)")
    ax.set_title(title, fontsize=8)
    if paired:
        right = axes[0][1]
        _draw(right, paired, samplers, grids, z, positive=False)
        right.axhline(0.0, color="0.4", linewidth=1)
        right.axhline(tolerance * reference[1], color="0.2", linestyle="--", linewidth=1,
                      label=f"{tolerance:.0%} of {reference[0]}")
        right.set_yscale("symlog", linthresh=max(tolerance * reference[1], 1e-3))
        right.set_ylabel(f"FD - {reference[0]}, paired (± {z:g} s.e.)")
        right.set_title("within the tolerance and resolved: the whole bar below the dashed line", fontsize=8)
    nfe_axis(axes[0][0], [_number(row.get("nfe")) or 0.0 for row in rows])
    if paired:  # the reference's own NFE (500) is not on the right: its difference to itself is 0
        nfe_axis(axes[0][1], [point[0] for points in paired.values() for point in points])
    for axis in axes[0]:
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    return save_figure(fig, path)


def _is_reference(row, reference):
    """Whether ``row`` is the reference's own (``reference`` = ("ddpm@500", value))."""
    return reference is not None and is_reference_row(row, *parse_reference(reference[0]))
