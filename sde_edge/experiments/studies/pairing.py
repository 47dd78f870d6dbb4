"""Differences paired over training seeds, only between evaluations made in one feature space.

An FD is a distance in one classifier's features: two classifiers trained from the same seed on
different thread counts or library builds differ in their last digits, and so do their FDs. Each
evaluation records its feature space (``features``, e.g. "classifier (shapes, 64px, held-out
accuracy 0.9890)"); a pair of seeds measured in two spaces is not a difference, and a claim whose
rows span two spaces says so instead of giving a verdict. Rows without the field (tables of an
earlier report) pair with any space."""
import math


def paired_differences(rows, setting, sampler, ours, baseline, metric="fd"):
    """metric(ours) - metric(baseline) per training seed that both arms have evaluated with ``sampler``
    in one feature space."""
    value = {(r["arm"], r["seed"]): (r.get(metric), r.get("features") or None)
             for r in rows if r["setting"] == setting and r["sampler"] == sampler}
    paired = []
    for arm, seed in sorted(value):
        if arm != ours or (baseline, seed) not in value:
            continue
        (mine, space), (theirs, other) = value[ours, seed], value[baseline, seed]
        if None not in (mine, theirs) and (space is None or other is None or space == other):
            paired.append(mine - theirs)
    return paired


def feature_spaces(rows, setting, sampler, arms):
    """{feature space: ["arm sN", ...]} of the rows of ``arms`` in one setting and sampler (rows that
    name none left out)."""
    spaces = {}
    for r in sorted(rows, key=lambda r: (r["arm"], r["seed"])):
        if r["setting"] == setting and r["sampler"] == sampler and r["arm"] in arms and r.get("features"):
            spaces.setdefault(r["features"], []).append(f"{r['arm']} s{r['seed']}")
    return spaces


def _runs(names):
    """["E s0", "E s1", "D s3"] -> "E s0-1, D s3": each arm's seeds, consecutive ones as a range."""
    seeds = {}
    for name in names:
        arm, seed = name.rsplit(" s", 1)
        seeds.setdefault(arm, []).append(int(seed))
    parts = []
    for arm, numbers in seeds.items():
        numbers = sorted(numbers)
        consecutive = numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 1
        parts.append(f"{arm} s{numbers[0]}-{numbers[-1]}" if consecutive else
                     ", ".join(f"{arm} s{n}" for n in numbers))
    return ", ".join(parts)


def mixed_spaces(rows, setting, sampler, arms):
    """None when the arms' rows share one feature space, else a line naming each space's rows."""
    spaces = feature_spaces(rows, setting, sampler, arms)
    if len(spaces) < 2:
        return None
    return (f"measured in {len(spaces)} feature spaces, not paired across them; "
            + "; ".join(f"{_runs(runs)} in {space}" for space, runs in spaces.items()))


def seeds_to_resolve(mean, se, n, z=2.0):
    """How many seeds would put a paired difference of this mean and seed spread z standard errors
    from 0 (what an inconclusive row would need, if more seeds changed neither)."""
    spread = se * math.sqrt(n)
    return f"at this mean and seed spread, about {math.ceil((z * spread / abs(mean)) ** 2)} seeds would resolve it"
