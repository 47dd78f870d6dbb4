"""Paired differences only within one feature space, and a claim that says so when its rows span two."""
from sde_edge.experiments.studies import comparison_runs as cr
from sde_edge.experiments.studies.comparison import Comparison
from sde_edge.experiments.studies.pairing import mixed_spaces, paired_differences

A, B = "classifier (shapes, 64px, held-out accuracy 0.9890)", "classifier (shapes, 64px, held-out accuracy 0.9885)"


def _row(arm, seed, fd, features, setting="digits8", sampler="ddpm@500"):
    return {"setting": setting, "arm": arm, "seed": seed, "sampler": sampler, "fd": fd, "features": features}


def test_seeds_measured_in_two_classifiers_are_not_paired():
    rows = [_row("E", 0, 10.0, A), _row("D", 0, 13.0, A), _row("E", 1, 11.0, A), _row("D", 1, 20.0, B),
            _row("E", 2, 12.0, None), _row("D", 2, 12.5, B),  # a row of an earlier table names no space
            _row("E", 3, 1.0, A, sampler="ddim@50"), _row("D", 3, 9.0, B, sampler="ddim@50")]
    assert paired_differences(rows, "digits8", "ddpm@500", "E", "D") == [-3.0, -0.5]
    line = mixed_spaces(rows, "digits8", "ddpm@500", ("E", "D"))
    assert f"D s0, E s0-1 in {A}" in line and f"D s1-2 in {B}" in line, line  # E s2 names no space
    assert mixed_spaces(rows, "digits8", "ddpm@500", ("E",)) is None  # E's rows share one space


def test_a_claim_over_two_classifiers_is_pending_and_names_them():
    setting = cr.QUICK_SETTINGS[0]
    rows = [_row("E", s, 10.0 + s, A) for s in setting.seeds] + [_row("D", s, 20.0, A) for s in setting.seeds]
    final = "ddpm@500"
    summary = [{"setting": setting.name, "arm": arm, "fd": 1.0, "fd_se": 0.1, "complete": True, "seeds": 2}
               for arm in ("E", "D")]
    study = Comparison()
    claim = next(c for c in study._claims(summary, rows, final, True) if "E vs D" in str(c))
    assert claim["verdict"] != "pending", claim  # one space: a verdict
    rows[-1]["features"] = B
    claim = next(c for c in study._claims(summary, rows, final, True) if "E vs D" in str(c))
    assert claim["verdict"] == "pending" and f"D s0, E s0-1 in {A}; D s1 in {B}" in claim["ours"], claim
