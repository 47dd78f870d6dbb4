"""tools/experiments.py: every study's --quick version runs end to end and writes its CSV,
figure and report section; a second run reuses the trainings and evaluations."""
import json
import shutil
import sys
import time

import pytest

import forked
from helpers import ROOT

STUDIES = ("comparison", "comparison64", "unconditional", "convergence", "frequency", "sdedit", "ablation", "weighting")
FIGURES = {
    "comparison": "fd.png",
    "comparison64": "fd.png",
    "unconditional": "fd.png",
    "convergence": "convergence.png",
    "frequency": "heatmap.png",
    "sdedit": "fd_vs_t0.png",
    "ablation": "ablation.png",
    "weighting": None,
}
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
ANSWERS = {"weighting": ("yes, the bound", "no"),  # studies that answer a question of their own
           "comparison": ("edge noise better", "isotropic noise better", "DDPM loss better", "edge loss better",
                          "variance weighting better", "paper weighting better", "cosine better", "linear (E) better",
                          "per-image map better", "batch map (E) better")}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    started = time.perf_counter()
    result = forked.run(
        [sys.executable, str(ROOT / "tools" / "experiments.py"), "all", "--quick", f"--root={root}"],
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root, time.perf_counter() - started


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_writes_its_csv_figure_and_section(quick_run, study):
    root, _ = quick_run
    assert list((root / study).glob("*.csv")), f"{study} wrote no CSV"
    if FIGURES[study]:
        assert (root / study / FIGURES[study]).exists()
    published = root / "reproduction" / study
    assert (published / "section.md").read_text().startswith("## ")
    claims = json.loads((published / "claims.json").read_text())
    assert claims and all(c["verdict"] in VERDICTS + ANSWERS.get(study, ()) for c in claims), claims
    report = (root / "REPRODUCTION.md").read_text()
    assert (published / "section.md").read_text().splitlines()[0] in report


def test_a_second_run_reuses_everything(quick_run):
    root, first_seconds = quick_run
    started = time.perf_counter()
    result = forked.run([sys.executable, str(ROOT / "tools" / "experiments.py"), "unconditional", "--quick",
                        f"--root={root}"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training" not in result.stdout
    assert time.perf_counter() - started < first_seconds / 2


def _experiments(*args, timeout=300):
    result = forked.run([sys.executable, str(ROOT / "tools" / "experiments.py"), *args],
                        timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_cached_trains_nothing_and_marks_every_study_pending(tmp_path):
    result = _experiments("all", "--quick", "--cached", f"--root={tmp_path}")
    assert "training" not in result.stdout
    assert not list((tmp_path / "trainings").glob("*"))
    for study in STUDIES:
        claims = json.loads((tmp_path / "reproduction" / study / "claims.json").read_text())
        assert claims and all(c["verdict"] == "pending" for c in claims), study
    assert "pending" in (tmp_path / "REPRODUCTION.md").read_text()


def test_cached_report_of_finished_runs_gives_the_same_claims(quick_run):
    root, _ = quick_run
    computed = {s: json.loads((root / "reproduction" / s / "claims.json").read_text()) for s in STUDIES}
    _experiments("all", "--quick", "--cached", f"--root={root}")
    for study in STUDIES:
        assert json.loads((root / "reproduction" / study / "claims.json").read_text()) == computed[study], study


def test_list_prints_every_registered_study_with_a_line_each():
    listed = _experiments("--list").stdout.splitlines()
    assert [line.split()[0] for line in listed] == list(STUDIES)
    assert all(len(line.split()) > 3 for line in listed)


def test_comparison_marks_an_arm_pending_until_all_its_seeds_are_done(quick_run, tmp_path):
    root, _ = quick_run
    partial = tmp_path / "partial"
    shutil.copytree(root / "trainings", partial / "trainings")
    shutil.copytree(root / "evals", partial / "evals")
    for folder in ("trainings", "evals"):  # the second seed of E-var not done yet
        shutil.rmtree(partial / folder / "cmp-digits8-E-var-s1")
    _experiments("comparison", "--quick", "--cached", f"--root={partial}")
    claims = {c["claim"]: c for c in json.loads((partial / "reproduction" / "comparison" / "claims.json").read_text())}
    weighting = next(c for name, c in claims.items() if name.startswith("(1c)"))
    assert weighting["verdict"] == "pending" and "1 and 2 of 2 seeds" in weighting["ours"]
    assert all(c["verdict"] != "pending" for name, c in claims.items() if not name.startswith("(1c)"))
    assert "| E-var | 1 of 2 (pending) |" in (partial / "reproduction" / "comparison" / "section.md").read_text()


def test_a_diverged_seed_run_is_the_arms_verdict_not_a_crash_and_results_stay_strict_json(quick_run, tmp_path):
    from sde_edge.experiments.runs import DIVERGED

    root, _ = quick_run
    partial = tmp_path / "partial"
    shutil.copytree(root / "trainings", partial / "trainings")
    shutil.copytree(root / "evals", partial / "evals")
    for folder in ("trainings", "evals"):
        shutil.rmtree(partial / folder / "cmp-digits8-E-var-s1")
    (partial / "trainings" / "cmp-digits8-E-var-s1").mkdir()
    (partial / "trainings" / "cmp-digits8-E-var-s1" / DIVERGED).write_text("training diverged at step 7: loss nan")
    _experiments("comparison", "--quick", "--cached", f"--root={partial}")
    published = partial / "reproduction" / "comparison"
    claims = {c["claim"]: c for c in json.loads((published / "claims.json").read_text())}
    weighting = next(c for name, c in claims.items() if name.startswith("(1c)"))
    assert weighting["verdict"] == "diverged" and "E-var: seed 1 at step 7" in weighting["ours"]
    assert all(c["verdict"] not in ("pending", "diverged") for n, c in claims.items() if not n.startswith("(1c)"))
    assert "| E-var | 1 of 2 (1 diverged) |" in (published / "section.md").read_text()

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    results = json.loads((published / "results.json").read_text(), parse_constant=refuse)
    assert results["diverged"] == [{"setting": "digits8", "arm": "E-var", "seeds": ["seed 1 at step 7"]}]


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
    from sde_edge.train import DivergenceError

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


def test_the_sweep_chooses_among_the_ema_weights_only():
    from sde_edge.experiments.studies.comparison_text import sweep_best

    sweep = [{"arm": "E", "lr": lr, "clip": 0.0, "ema": ema, "fd_val": fd, "fd_val_stderr": 1.0}
             for lr, ema, fd in ((5e-4, True, 10.2), (5e-4, False, 11.7), (2e-3, True, 11.4), (2e-3, False, 7.0))]
    assert sweep_best(sweep, "E") == sweep[0]
    assert sweep_best(sweep + [{"arm": "E", "lr": 1e-3, "clip": 0.0, "ema": None}], "E") is None  # pending


TOY_STUDY = r"""
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.studies.common import write_section


@register
class Toy(Study):
    name = "toy"
    title = "A toy study"
    claims = ("(9) toy claim",)
    summary = "a study registered from outside the package"

    def run(self, root, out, quick):
        rows = [claim_row("(9) toy claim", "nowhere", "-", "42", "inconclusive", "-")]
        write_section(out, "## A toy study\n\nThe answer is $answer.", {"answer": 42}, rows, {})
"""


def test_a_study_registered_outside_the_package_is_listed_run_and_reported(tmp_path):
    plugin = tmp_path / "toy_study.py"
    plugin.write_text(TOY_STUDY)
    listed = _experiments("--list", f"--plugin={plugin}").stdout
    assert "toy" in listed and "registered from outside the package" in listed
    _experiments("toy", f"--plugin={plugin}", "--quick", f"--root={tmp_path / 'root'}")
    report = (tmp_path / "root" / "REPRODUCTION.md").read_text()
    assert "The answer is 42." in report and "| (9) toy claim | nowhere |" in report
