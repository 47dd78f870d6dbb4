"""A bridged difference to a stochastic reference: what decides "within 10% of ddpm@500" at a
sample count that the pairs alone cannot.

ddpm@500 adds fresh noise at each of its 500 steps, so its samples forget the initial noise they
share with a deterministic sampler's: FD(K) - FD(ddpm) paired on the shared noise keeps the unpaired
error (0.62-0.66 at 1,000 samples of digits_edge, against a 10% band of 0.50). A deterministic
bridge B at a high NFE (e.g. dpmpp_2m@100) keeps the pairing:

    FD(K) - FD(ref) = [FD(K) - FD(B)] + [FD(B) - FD(ref)],

the first term paired on the comparison's shared noise (errors of a few hundredths: the samplers'
noise cancels), the second measured once per model on N samples of each, its error shrinking as
1 / sqrt(N). The 10% question then costs one large pair per model instead of a large n for every
setting. The terms come from disjoint samples (the large pair has its own seed), so their variances
add. Each term compares sets of equal size, so FD's 1/n bias largely cancels within it."""
import math

from sde_edge.experiments.sampler_comparison import smallest_nfe


def add_bridged_differences(rows, judge, bridge_row, term):
    """``fd_diff_bridged`` and ``fd_diff_bridged_se`` of every row with features: its paired difference
    to ``bridge_row`` (same noise, same n) plus ``term`` = (FD(bridge) - FD(reference), s.e.) from the
    large pair; ``judge`` is a ``MetricsJudge``."""
    mean, se = term
    for row in rows:
        if "_features" not in row:
            continue
        if row is bridge_row:
            difference, difference_se = 0.0, 0.0
        else:
            difference, difference_se = judge.paired_fd_difference(row["_features"], bridge_row["_features"])
        row["fd_diff_bridged"], row["fd_diff_bridged_se"] = difference + mean, math.hypot(difference_se, se)
    return rows


def nfe_to_match_bridged(rows, target, tolerance=0.10, z=2.0):
    """For each sampler and grid, the smallest NFE whose bridged difference is below ``tolerance`` x
    ``target`` (the reference's FD) by ``z`` standard errors: within 10% and resolved."""
    return smallest_nfe(rows, lambda r: "fd_diff_bridged" in r
                         and r["fd_diff_bridged"] + z * r["fd_diff_bridged_se"] <= tolerance * target)
