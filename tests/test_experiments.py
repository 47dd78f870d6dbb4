"""tools/experiments.py: every study's --quick version runs end to end and writes its CSV,
figure and report section; a second run reuses the trainings and evaluations."""
import json
import subprocess
import sys
import time

import pytest

from helpers import ROOT

STUDIES = ("unconditional", "convergence", "frequency", "sdedit", "ablation", "weighting")
FIGURES = {"unconditional": "fd.png", "convergence": "convergence.png", "frequency": "heatmap.png",
           "sdedit": "fd_vs_t0.png", "ablation": "ablation.png", "weighting": None}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "experiments.py"), "all", "--quick", f"--root={root}"],
                            capture_output=True, text=True, timeout=900)
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
    verdicts = ("reproduced", "not reproduced", "inconclusive") + (("yes, the bound", "no") if study == "weighting" else ())
    assert claims and all(c["verdict"] in verdicts for c in claims)  # weighting answers our own question
    report = (root / "REPRODUCTION.md").read_text()
    assert (published / "section.md").read_text().splitlines()[0] in report


def test_a_second_run_reuses_everything(quick_run):
    root, first_seconds = quick_run
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "experiments.py"), "unconditional", "--quick",
                             f"--root={root}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training" not in result.stdout
    assert time.perf_counter() - started < first_seconds / 2


def _experiments(*args, timeout=300):
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "experiments.py"), *args],
                            capture_output=True, text=True, timeout=timeout)
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
