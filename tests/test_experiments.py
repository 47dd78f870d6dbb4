"""tools/experiments.py: every study's --quick version runs end to end and writes its CSV,
figure and report section; a second run reuses the trainings and evaluations."""
import json
import re
import shutil
import sys
import time

import pytest

import forked
from helpers import ROOT

STUDIES = ("comparison", "comparison64", "latent", "unconditional", "convergence", "frequency", "sdedit", "ablation",
           "weighting")
FIGURES = {
    "comparison": "fd.png",
    "comparison64": "fd.png",
    "latent": "fd.png",
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
                          "per-image map better", "batch map (E) better"),
           "latent": ("edge noise better", "isotropic noise better", "DDPM loss better", "edge loss better")}


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
    section = (published / "section.md").read_text()
    assert report.count(section.splitlines()[0] + "\n") == 1  # its heading, once: no two studies share one
    links = re.findall(r"reproduction/(\w+)/", section + json.dumps(claims))
    assert set(links) <= {study}, links  # its text and claims show its own figures


def test_a_second_run_reuses_everything(quick_run):
    root, first_seconds = quick_run
    started = time.perf_counter()
    result = forked.run([sys.executable, str(ROOT / "tools" / "experiments.py"), "unconditional", "--quick",
                        f"--root={root}"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training" not in result.stdout
    assert time.perf_counter() - started < first_seconds / 2


def _run(*args, timeout=300):
    return forked.run([sys.executable, str(ROOT / "tools" / "experiments.py"), *args], timeout=timeout)


def _experiments(*args, timeout=300):
    result = _run(*args, timeout=timeout)
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


def test_comparison_shows_e_beside_d_from_the_evaluations_and_still_without_the_trainings(quick_run, tmp_path):
    root, _ = quick_run
    grids = {arm: next((root / "evals" / f"cmp-digits8-{arm}-s0").glob("*/ddpm10_n32_seed0.png")) for arm in "ED"}
    for arm, grid in grids.items():  # the verdict sampler's grid of seed 0, kept beside the run's record
        assert (root / "reproduction" / "kept" / f"cmp-digits8-{arm}-s0.ddpm10_n32_seed0.png").read_bytes() == \
            grid.read_bytes()
    link = "(reproduction/comparison/samples_digits8.png)"
    assert link in (root / "reproduction" / "comparison" / "section.md").read_text()
    assert (root / "reproduction" / "comparison" / "samples_digits8.png").exists()
    fresh = tmp_path / "fresh"  # a checkout: the kept records and pictures, no trainings, no evaluations
    shutil.copytree(root / "reproduction" / "kept", fresh / "reproduction" / "kept")
    _experiments("comparison", "--quick", "--cached", f"--root={fresh}")
    assert link in (fresh / "reproduction" / "comparison" / "section.md").read_text()
    assert (fresh / "reproduction" / "comparison" / "samples_digits8.png").exists()


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


def test_shard_workers_share_a_studys_runs_and_the_cached_report_needs_no_more(quick_run, tmp_path):
    """Two workers (--shard 0/2, 1/2) train and evaluate disjoint halves of the comparison's runs;
    neither writes a report, and --cached then finds every training and evaluation on disk."""
    from sde_edge.experiments.studies.comparison import Comparison

    root, _ = quick_run
    partial = tmp_path / "partial"
    shutil.copytree(root / "trainings", partial / "trainings")  # no evaluations at all
    shutil.rmtree(partial / "trainings" / "cmp-digits8-E-var-s1")  # and one training to do
    keys = [spec.key for spec in Comparison().runs(quick=True)]
    _experiments("comparison", "--quick", "--shard=0/2", f"--root={partial}")
    evaluated = {path.name for path in (partial / "evals").iterdir()}
    assert evaluated and evaluated <= set(keys[0::2]), evaluated - set(keys[0::2])
    assert not (partial / "REPRODUCTION.md").exists() and not (partial / "reproduction" / "comparison").exists()
    _experiments("comparison", "--quick", "--shard=1/2", f"--root={partial}")
    assert {path.name for path in (partial / "evals").iterdir()} == set(keys)
    result = _experiments("comparison", "--quick", "--cached", f"--root={partial}")
    assert "training" not in result.stdout
    claims = json.loads((partial / "reproduction" / "comparison" / "claims.json").read_text())
    assert claims and all(c["verdict"] != "pending" for c in claims), claims
    refusals = ((["unconditional", "--shard=0/2"], "--train_only"), (["comparison", "--shard=2/2"], "0 <= i < n"),
                (["comparison", "--shard=0/2", "--cached"], "--cached alone"))
    for args, says in refusals:
        refused = forked.run([sys.executable, str(ROOT / "tools" / "experiments.py"), *args, "--quick",
                              f"--root={partial}"], timeout=120)
        assert refused.returncode != 0 and says in refused.stderr, refused.stderr[-500:]


def test_a_report_rebuilt_from_the_published_folder_alone_has_every_result(quick_run, tmp_path):
    root, _ = quick_run
    fresh = tmp_path / "fresh"  # the published folder (with its kept records), no trainings, no evaluations
    shutil.copytree(root / "reproduction", fresh / "reproduction")
    before = {study: {name: (fresh / "reproduction" / study / name).read_text()
                      for name in ("per_seed.csv", "claims.json", "section.md", "compute.json")
                      if (fresh / "reproduction" / study / name).exists()}
              for study in ("comparison", "unconditional")}

    trained = _run("comparison", "--quick", "--train_only", f"--root={fresh}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert not (fresh / "trainings").exists()  # every run was measured already: none is trained again
    for shard in ("0/2", "1/2"):  # nor do the study's own workers, which train and evaluate
        worker = _run("comparison", "--quick", f"--shard={shard}", f"--root={fresh}")
        assert worker.returncode == 0, worker.stderr[-2000:]
    assert not (fresh / "trainings").exists() and not (fresh / "evals").exists()

    rebuilt = _run("all", "--quick", "--cached", f"--root={fresh}")
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert not (fresh / "trainings").exists()  # nothing trained
    published = fresh / "reproduction"
    for name, text in before["comparison"].items():  # from the kept records: the same numbers, verdicts, cost
        assert (published / "comparison" / name).read_text() == text, name
    # a study that reads its runs from the trainings root is pending here: its published section stands
    assert "unconditional: pending here" in rebuilt.stdout
    for name, text in before["unconditional"].items():
        assert (published / "unconditional" / name).read_text() == text, name
    claims = json.loads((published / "unconditional" / "claims.json").read_text())
    assert all(c["verdict"] != "pending" for c in claims)


def test_train_only_trains_a_run_whose_training_is_kept_but_not_its_evaluations(quick_run, tmp_path):
    root, _ = quick_run
    fresh = tmp_path / "fresh"
    shutil.copytree(root / "reproduction", fresh / "reproduction")
    records = sorted((fresh / "reproduction" / "kept").glob("cmp-*.json"))
    assert records
    unmeasured = records[0]  # its training facts stay kept; its evaluations are gone
    data = json.loads(unmeasured.read_text())
    assert data["training"] and data["evaluations"]
    unmeasured.write_text(json.dumps({**data, "evaluations": {}}))
    trained = _run("comparison", "--quick", "--train_only", f"--root={fresh}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert {path.name for path in (fresh / "trainings").iterdir()} == {unmeasured.stem}


def test_a_killed_evaluation_resumes_from_its_finished_batches_with_the_same_metrics(quick_run, tmp_path,
                                                                                     monkeypatch):
    import sde_edge.sampling.batched as batched
    from sde_edge.experiments.evaluate import Protocol, cache_path, evaluate
    from sde_edge.experiments.studies import comparison_runs as cr

    spec = cr.run_of(cr.QUICK_SETTINGS[0], "E", 0)
    roots = [tmp_path / "killed", tmp_path / "whole"]
    for root in roots:
        shutil.copytree(quick_run[0] / "trainings" / spec.key, root / "trainings" / spec.key)
    protocol = Protocol("ddpm", 3, 260, seed=11)  # two batches of 250 (the evaluations' batch)
    real, calls = batched.sample, []

    def killed_at_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(batched, "sample", killed_at_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        evaluate(spec, roots[0], protocol)
    partial = cache_path(spec, roots[0], protocol).with_name(f".{protocol.slug}.partial")
    assert [path.name for path in partial.iterdir()] == ["batch_00000000.pt"]
    monkeypatch.undo()
    resumed, whole = (evaluate(spec, root, protocol) for root in roots)
    assert not partial.exists() and resumed["fd"] == whole["fd"] and resumed["kid"] == whole["kid"]


def test_the_compute_table_counts_a_run_still_training_by_its_minutes_not_as_done(quick_run, tmp_path):
    from sde_edge.experiments.compute import compute_used
    from sde_edge.experiments.studies import comparison_runs as cr

    root = tmp_path / "root"
    shutil.copytree(quick_run[0] / "trainings", root / "trainings")
    finished = compute_used(root, quick=True)["comparison"]
    spec = cr.run_of(cr.QUICK_SETTINGS[0], "E", 0)
    for checkpoint in (root / "trainings" / spec.key / "checkpoints").glob("*.pt"):
        checkpoint.unlink()  # as if cut before its last checkpoint: its metrics.csv still shows the minutes
    going = compute_used(root, quick=True)["comparison"]
    assert going["trainings on disk"] == finished["trainings on disk"] - 1 > 0
    assert going["training wall (min)"] == finished["training wall (min)"] > 0
