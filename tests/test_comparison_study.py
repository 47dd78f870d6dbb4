"""The comparison study's verdicts, tables and sweep choice on hand-made rows (the end-to-end runs:
test_experiments.py), and its results written as strict JSON."""
import json


def test_results_json_writes_nan_and_infinity_as_null(tmp_path):
    import math

    import numpy as np

    from sde_edge.experiments.report import write_study

    write_study(tmp_path, "## s", [], {"rows": [{"fd": math.inf, "se": np.float32("nan"), "n": 3, "x": (1.5,)}]})
    text = (tmp_path / "results.json").read_text()
    assert json.loads(text) == {"rows": [{"fd": None, "se": None, "n": 3, "x": [1.5]}]} and "NaN" not in text


def test_comparison_verdicts_read_the_paired_difference_not_the_two_spreads():
    from sde_edge.experiments.studies.comparison import Comparison

    fds = {"E": (10.0, 20.2), "D": (11.0, 21.0)}  # E lower on every seed; the seed spread is ten times larger
    rows = [{"setting": "digits8", "sampler": "ddpm@10", "arm": arm, "seed": seed, "fd": fd}
            for arm, values in fds.items() for seed, fd in enumerate(values)]
    summary = [{"setting": "digits8", "arm": arm, "fd": sum(v) / 2, "fd_se": abs(v[1] - v[0]) / 2, "complete": True,
                "seeds": 2} for arm, v in fds.items()]
    claims = Comparison()._claims(summary, rows, "ddpm@10", quick=True)
    main = next(c for c in claims if "E vs D" in c["setting"] and "D-sigma" not in c["setting"])
    assert main["verdict"] == "reproduced" and "paired difference -0.9 ± 0.1 over 2 seeds" in main["ours"]
    assert "would resolve it" not in main["ours"]  # only an inconclusive row asks for more seeds
    # 30% of D's 16.0 is a difference of -4.8: (-0.9 + 4.8) / 0.1 = 39 paired s.e. below the measured one
    assert "the paper's largest gain, 30% (-4.8 here), lies 39.0 paired s.e. below ours" in main["ours"]


def test_an_inconclusive_comparison_says_how_many_seeds_would_resolve_it():
    from sde_edge.experiments.studies.comparison import Comparison

    # paired differences -1 and -4: mean -2.5, s.d. 2.12, s.e. 1.5 (inconclusive: 2.5 < 2 x 1.5);
    # 2 s.e. < 2.5 needs n > (2 x 2.12 / 2.5)^2 = 2.88, so 3 seeds
    fds = {"E": (10.0, 20.0), "D": (11.0, 24.0)}
    rows = [{"setting": "digits8", "sampler": "ddpm@10", "arm": arm, "seed": seed, "fd": fd}
            for arm, values in fds.items() for seed, fd in enumerate(values)]
    summary = [{"setting": "digits8", "arm": arm, "fd": sum(v) / 2, "fd_se": abs(v[1] - v[0]) / 2, "complete": True,
                "seeds": 2} for arm, v in fds.items()]
    main = next(c for c in Comparison()._claims(summary, rows, "ddpm@10", quick=True)
                if "E vs D" in c["setting"] and "D-sigma" not in c["setting"])
    assert main["verdict"] == "inconclusive" and "paired difference -2.5 ± 1.5 over 2 seeds" in main["ours"]
    assert "about 3 seeds would resolve it" in main["ours"]


def test_a_pending_comparison_shows_the_interim_paired_difference_without_a_verdict():
    from sde_edge.experiments.studies.comparison import Comparison

    # E has seeds 0-2, D seeds 0-1: the interim difference pairs seeds 0 and 1 only (-1.0 and -3.0)
    fds = {"E": (10.0, 20.0, 99.0), "D": (11.0, 23.0)}
    rows = [{"setting": "digits8", "sampler": "ddpm@10", "arm": arm, "seed": seed, "fd": fd}
            for arm, values in fds.items() for seed, fd in enumerate(values)]
    summary = [{"setting": "digits8", "arm": arm, "fd": 1.0, "fd_se": 0.1, "complete": False, "seeds": len(v)}
               for arm, v in fds.items()]
    claims = Comparison()._claims(summary, rows, "ddpm@10", quick=True)
    main = next(c for c in claims if "E vs D" in c["setting"] and "D-sigma" not in c["setting"])
    assert main["verdict"] == "pending"
    assert "3 and 2 of 2 seeds evaluated" in main["ours"]
    assert "interim paired difference E - D over the 2 seeds both have, not a verdict: -2 ± 1" in main["ours"]


def test_a_diverged_sweep_cell_is_kept_as_a_result_and_never_chosen(tmp_path):
    import math

    import pytest

    from sde_edge.experiments.runs import DIVERGED, ensure_trained, workdir_of
    from sde_edge.experiments.studies import comparison_runs as cr
    from sde_edge.experiments.studies.comparison_text import sweep_best, sweep_table
    from sde_edge.training.trainer import DivergenceError

    spec = cr.sweep_run(cr.SETTINGS[0], "E-var", 2e-3, 0.0)
    workdir = workdir_of(spec, tmp_path)
    workdir.mkdir(parents=True)
    (workdir / DIVERGED).write_text("training diverged at step 123: the loss 7e4 exceeds ...")
    with pytest.raises(DivergenceError, match="step 123"):  # not trained again: no checkpoint appears
        ensure_trained(spec, tmp_path, progress=False)
    assert not (workdir / "checkpoints").exists()
    sweep = [{"arm": "E-var", "lr": 5e-4, "clip": 1.0, "ema": ema, "fd_val": fd, "fd_val_stderr": 3.0}
             for ema, fd in ((True, 47.1), (False, 44.8))]
    diverged = [{"arm": "E-var", "lr": 2e-3, "clip": 0.0, "ema": ema, "fd_val": math.inf, "fd_val_stderr": 0.0,
                 "diverged": "step 123"} for ema in (True, False)]
    assert sweep_best(sweep + diverged, "E-var") == sweep[0]
    assert sweep_best(diverged, "E-var") is None  # every cell diverged: no recipe to carry
    assert "| E-var | 0.002 | none | EMA | diverged (step 123) |" in sweep_table(sweep + diverged)


def test_the_arm_table_gives_each_runs_training_and_evaluation_minutes():
    from sde_edge.experiments.studies.comparison_text import arm_table

    entry = {"setting": "shapes16", "arm": "E", "seeds": 4, "seeds_of": 5, "complete": False, "fd": 6.31,
             "fd_se": 0.56, "fd_min": 5.5, "fd_max": 7.93, "fd_ddim@50": 10.7, "fd_ddim@50_se": 0.24,
             "grad_norm_median": 22.2, "clipped_share": 0.0, "train_minutes": 60.4, "eval_minutes": 16.2}
    row = arm_table([entry])[-1]
    assert row.startswith("| shapes16 | E | 4 of 5 (pending) | 6.31 ± 0.56 |") and row.endswith("| 0% | 60 | 16 |")
    assert arm_table([{**entry, "diverged": 1}])[-1].startswith("| shapes16 | E | 4 of 5 (1 diverged) |")


def test_an_arm_whose_seeds_ran_on_different_machines_gives_minutes_per_machine():
    from sde_edge.experiments.studies.comparison_text import arm_table, minutes_by_device

    rows = [{"trained_on": "CPU, 1 thread", "train_minutes": 160.0, "eval_minutes": 100.0},
            {"trained_on": "NVIDIA H200", "train_minutes": 3.0, "eval_minutes": 1.0},
            {"trained_on": "NVIDIA H200", "train_minutes": 4.0, "eval_minutes": 2.0}]
    entry = {"setting": "shapes32", "arm": "E", "seeds": 3, "seeds_of": 3, "complete": True, "fd": 2.9, "fd_se": 0.2,
             "fd_min": 2.6, "fd_max": 3.3, "grad_norm_median": 89.0, "clipped_share": 0.0, "train_minutes": 55.7,
             "eval_minutes": 34.3, "minutes_by_device": minutes_by_device(rows)}
    assert arm_table([entry])[-1].endswith(
        "| 160 (CPU, 1 thread); 3.5 (NVIDIA H200) | 100 (CPU, 1 thread); 1.5 (NVIDIA H200) |")
    unrecorded = {**entry, "minutes_by_device": minutes_by_device([{"train_minutes": 60.0, "eval_minutes": 16.0}])}
    assert arm_table([unrecorded])[-1].endswith("| 56 | 34 |")  # the study's stated machine, in the footnote


def test_the_metrics_table_pairs_e_and_d_by_seed_and_names_the_arm_ahead_in_each():
    from sde_edge.experiments.studies.comparison_text import secondary_table

    # E - D per seed: FD +1, +2, +3 (mean 2, s.e. 0.577: D ahead); precision -0.1, +0.1, 0 (mean 0: nobody);
    # recall +0.01 on each seed (s.e. 0: E ahead, higher is better); a seed D lacks is left out
    e = [(11.0, 0.5, 0.81), (12.0, 0.7, 0.81), (13.0, 0.6, 0.81), (99.0, 0.0, 0.0)]
    d = [(10.0, 0.6, 0.8), (10.0, 0.6, 0.8), (10.0, 0.6, 0.8)]
    rows = [{"setting": "s", "sampler": "ddpm@10", "arm": arm, "seed": seed, "fd": fd, "precision": p, "recall": r}
            for arm, values in (("E", e), ("D", d)) for seed, (fd, p, r) in enumerate(values)]
    row = secondary_table(rows, {"s": 3, "absent": 3}, "ddpm@10")[-1].split(" | ")
    assert row[:3] == ["| s", "3", "2 ± 0.58 **D**"] and row[3] == "-"  # no KID in these rows
    assert row[4] == "0 ± 0.058" and row[5].startswith("0.01 ±") and row[5].endswith("**E**")
    pending = secondary_table(rows, {"s": 4}, "ddpm@10")[-1]  # a seed to come: no arm named ahead
    assert pending.startswith("| s | 3 of 4 (pending) | 2 ± 0.58 |") and "**" not in pending
    assert secondary_table(rows, {"absent": 3}, "ddpm@10") == ["(no setting has two paired seeds of both arms yet)"]


def test_the_sweep_chooses_among_the_ema_weights_only():
    from sde_edge.experiments.studies.comparison_text import sweep_best

    sweep = [{"arm": "E", "lr": lr, "clip": 0.0, "ema": ema, "fd_val": fd, "fd_val_stderr": 1.0}
             for lr, ema, fd in ((5e-4, True, 10.2), (5e-4, False, 11.7), (2e-3, True, 11.4), (2e-3, False, 7.0))]
    assert sweep_best(sweep, "E") == sweep[0]
    assert sweep_best(sweep + [{"arm": "E", "lr": 1e-3, "clip": 0.0, "ema": None}], "E") is None  # pending


def test_the_report_names_each_arms_chosen_recipe_from_the_sweep():
    from sde_edge.experiments.studies.comparison_text import chosen_recipes

    def cell(arm, lr, clip, fd, ema=True):
        return {"arm": arm, "lr": lr, "clip": clip, "ema": ema, "fd_val": fd, "fd_val_stderr": 1.0}

    sweep = [cell("E", 5e-4, 0.0, 10.2), cell("E", 2e-3, 0.0, 11.4), cell("E-var", 5e-4, 0.0, 1.3e4),
             cell("E-var", 5e-4, 1.0, 47.1), cell("D", 5e-4, 0.0, 4.9), cell("D", 2e-3, 0.0, None, ema=None)]
    assert chosen_recipes(sweep) == "E lr 0.0005, E-var lr 0.0005, clip 1, D pending"
