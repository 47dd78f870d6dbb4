"""The paper's experiments at CPU scale: train what is missing, evaluate, write the report.

    python tools/experiments.py --list               # the registered studies, a line each
    python tools/experiments.py unconditional        # one study: resumable, trainings reused
    python tools/experiments.py all                  # every study in turn
    python tools/experiments.py comparison --train_only --shard 0/2   # train a study's runs, half of them
    python tools/experiments.py comparison --shard 1/2   # train and evaluate the other half (then --cached)
    python tools/experiments.py sdedit --quick --root /tmp/x    # the tests' tiny version
    python tools/experiments.py all --cached         # the report from what is on disk so far
    python tools/experiments.py --readme             # REPRODUCTION.md and the README's table from the kept claims
    python tools/experiments.py mine --plugin my_study.py       # a study registered outside the package

Studies are registered in ``sde_edge.experiments.registry`` (one module each under
``sde_edge/experiments/studies/``). Trainings go to --root/trainings/<run>/, cached evaluations
to --root/evals/, each study's CSV / JSON / figures to --root/<study>/; the study's small
artifacts are copied to reproduction/<study>/ beside --report (default
paper_appendix/REPRODUCTION.md; with --quick, --root/REPRODUCTION.md), whose claims table and
sections are rebuilt from every study that has run. What has been measured of each run (its
evaluations, training minutes, gradient statistics, divergence) is also kept in
reproduction/kept/<run>.json, committed with the report: a study reads a kept evaluation before it
looks for the run's checkpoint, so the report is rebuilt without the trainings root and a later
session trains only what was never measured. A study whose runs are neither on disk nor kept is
pending there, and its published section is left as it was.
"""
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

import sde_edge.experiments.studies  # noqa: F401 (registers every study)
from sde_edge.devices import set_cpu_threads
from sde_edge.experiments.compute import compute_table, compute_used, record_compute
from sde_edge.experiments.evaluate import Pending, set_compute
from sde_edge.experiments.kept import set_kept
from sde_edge.experiments.registry import STUDIES, claim_order, load_plugin
from sde_edge.experiments.report import assemble, load_claims, write_readme_results
from sde_edge.experiments.runs import ensure_trained
from sde_edge.training.trainer import DivergenceError, TrainingInterrupted

ROOT = Path(__file__).resolve().parents[1]
_ROOT = flags.DEFINE_string("root", "runs/experiments", "Where trainings, evaluations and study outputs go.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny runs (8x8, 20 steps, few samples): every study end to end in seconds.")
_TRAIN_ONLY = flags.DEFINE_bool("train_only", False, "Only train the study's runs (every study's with 'all').")
_LIST = flags.DEFINE_bool("list", False, "Print the registered studies, a line each, and exit.")
_README = flags.DEFINE_bool("readme", False, "Rebuild paper_appendix/REPRODUCTION.md and the README's results table "
                            "from the kept claims, and exit.")
_PLUGIN = flags.DEFINE_multi_string("plugin", [], "A Python file that registers studies of its own (repeatable).")
_SHARD = flags.DEFINE_string("shard", "0/1", "i/n: work on runs i, i+n, i+2n, ... only (parallel workers). With "
                             "--train_only: train them; without (studies that allow it): train and evaluate "
                             "them and write no report (then --cached writes it).")
_REPORT = flags.DEFINE_string("report", None, "The report to rebuild (default: see above).")
_THREADS = flags.DEFINE_integer("threads", None, "CPU threads for torch (default: all cores).")
_CACHED = flags.DEFINE_bool("cached", False, "Train and evaluate nothing: report from what is on disk; a study "
                            "missing something is marked pending (for the report while runs go on elsewhere).")

HEADER = """# Reproduction at CPU scale: does edge-preserving noise beat DDPM?

Every number below comes from `python tools/experiments.py STUDY` on a 2-core CPU (no GPU): 16x16
grey images (sklearn's digits, upsampled; the procedural `shapes`), the demo's 0.28 M-parameter
UNet at batch 64, the paper's diffusion settings (N = 500, linear tau, t_phi = 0.5, kappa
1e-4 -> 0.1). Two comparisons answer claim 1. The study `comparison` runs the paper's own: its
DDPM predicts the unscaled noise with the plain DDPM loss, both models are trained with the
released code's recipe (`configs/paper/`, the learning rate, clipping and EMA chosen per model on
a validation split) for 10,000 iterations, and the comparison is taken apart ingredient by
ingredient. The earlier studies (3,000 iterations, one recipe for all) compare the noise alone,
at the edge model's loss: the equal-loss comparison. The metrics are those of `sde-edge eval-samples`
in the dataset classifier's features (FD, KID, precision / recall with k = 3, sliced Wasserstein
per Laplacian band), because the Inception weights cannot be fetched offline: the numbers are not
FIDs and compare models only with each other. Standard errors are over independently trained
seeds (frequency: bootstrap errors, one seed). A verdict is 'reproduced' when the edge model is
better by more than two combined standard errors, 'not reproduced' when it is worse by more than
two, 'inconclusive' otherwise; 'pending' marks a study or an arm whose runs are not all done yet
(the comparison's decomposition rows answer in words: which ingredient is better). The CSV /
JSON behind every figure lie in `reproduction/<study>/`."""

FOOTER = """## Details and what a GPU would settle

* Budgets: each training run is 3,000 iterations at batch 64 (42 runs, 9-29 minutes of wall time
  each here, median 16, with two to six single-threaded training and evaluation jobs sharing the
  two cores; about 7 on an idle core). Final evaluations sample 1,000 images per model and seed
  (ddpm@500: about 10 minutes on a shared core, 17-20 with five jobs; ddim@50: 2-3 minutes),
  per-checkpoint curves 500 (ddim@25); SDEdit edits the first 1,000 test images (all 270 for
  digits). A study run start to end records its wall time in `reproduction/timings.json`; the
  studies here ran as parallel training shards and evaluation lanes (`--train_only --shard`, or
  `--shard` workers that also evaluate, then `--cached`): the table at the end sums what each used.
* What stays inconclusive here is a question of scale: the paper trains 35M-parameter UNets for
  hundreds of epochs on 64-128 px photographs and measures Inception FID on 10k+ samples. The
  configs `configs/celeba64_edge.py`, `configs/afhq_cat128_edge.py` and their `*_ddpm.py` twins
  carry the paper's Appendix E settings; docs/training.md ("Paper-scale runs") shows how to train them
  with torchrun and evaluate them with `sde-edge eval-samples --features inception`.
* The GPU recipe, `python tools/experiments.py comparison64` (E vs D on 64 px shapes, 3 seeds x
  5,000 iterations; `bash tools/gpu_check.sh` runs it), needs about 25 minutes of an H100 (measured
  2026-11-27: its six trainings side by side, compiled and under MPS, make 31 steps/s together, and
  the evaluations sample on the GPU, compiled). A lease here is 15 minutes: two H100 leases went
  to the CUDA tests and to measuring what makes the recipe fast (the first ran its trainings to
  about step 550), an H200 lease to the comparison's 32 px seeds 1-2, so the recipe's rows are not
  in this report yet (one seed a lease: `CHECKS=0 SHARDS="0 1" bash tools/gpu_check.sh`)."""


def parse_shard(text):
    """'i/n' -> (i, n) with 0 <= i < n; one clear line otherwise."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        index = count = None
    if count is None or not 0 <= index < count:
        raise app.UsageError(f"--shard expects i/n with 0 <= i < n (e.g. 0/2), got {text!r}")
    return index, count


def has_results(published):
    """Whether a study's published folder holds results (not only a pending note) that a report
    rebuilt without its runs must not overwrite."""
    path = Path(published) / "results.json"
    if not path.exists():
        return False
    results = json.loads(path.read_text())
    return bool(results) and set(results) != {"pending"}


def work_on_shard(chosen, root, quick, index, count):
    """One worker of n: train and evaluate the runs i, i+n, ... of each study (the other workers'
    work is pending here); the study's files go to a scratch folder, and no report is written."""
    for name in chosen:  # every study checked before any work starts
        if not STUDIES[name].evaluates_in_shards:
            raise app.UsageError(f"study {name!r} evaluates in one process: use --train_only --shard {index}/{count} "
                                 "for its trainings, then run it without --shard")
    if _CACHED.value:
        raise app.UsageError("--shard workers compute; --cached computes nothing: run --cached alone afterwards")
    for name in chosen:
        study = STUDIES[name]
        set_compute(True, runs={spec.key for spec in study.runs(quick)[index::count]})
        with tempfile.TemporaryDirectory() as scratch:
            try:
                study.run(root, Path(scratch), quick)
            except Pending:
                pass  # the other workers' share; --cached reports once every worker is done
        print(f"{name}: shard {index}/{count} done; the report: tools/experiments.py {name} --cached", flush=True)
    return 0


def publish(report, artifacts, readme=ROOT / "README.md"):
    """Rebuild the report from every study's kept files, and the README's results table from the same
    claims when the report is the published one (so the two cannot disagree)."""
    compute = "\n".join(["", "", "Wall time used per study, where it ran (trainings shared by several studies count "
                                 "under the first; jobs ran side by side, so these are not end-to-end times):", "",
                          *compute_table(artifacts)])
    assemble(report, artifacts, HEADER, FOOTER + compute, order=list(STUDIES), claim_order=claim_order())
    if Path(report).resolve() == (ROOT / "paper_appendix" / "REPRODUCTION.md").resolve():
        write_readme_results(readme, load_claims(artifacts, list(STUDIES), claim_order()))


def main(argv):
    for plugin in _PLUGIN.value:
        load_plugin(plugin)
    if _README.value:
        publish(ROOT / "paper_appendix" / "REPRODUCTION.md", ROOT / "paper_appendix" / "reproduction")
        return 0
    if _LIST.value:
        width = max(map(len, STUDIES))
        print("\n".join(f"{name:<{width}}  {study.summary}" for name, study in STUDIES.items()))
        return 0
    if len(argv) != 2:
        raise app.UsageError("name one study (or 'all'); --list shows them")
    set_cpu_threads(_THREADS.value)
    name, root, quick = argv[1], Path(_ROOT.value), _QUICK.value
    if name != "all" and name not in STUDIES:
        raise app.UsageError(f"unknown study {name!r}; choose from {list(STUDIES)} or 'all'")
    chosen = list(STUDIES) if name == "all" else [name]
    index, count = parse_shard(_SHARD.value)
    report = (
        Path(_REPORT.value)
        if _REPORT.value
        else (root / "REPRODUCTION.md" if quick else ROOT / "paper_appendix" / "REPRODUCTION.md")
    )
    artifacts = report.parent / "reproduction"
    set_kept(artifacts / "kept")  # what has been measured of each run, committed beside the report
    if _TRAIN_ONLY.value:
        owners = {}  # run key -> (spec, the chosen studies that need it)
        for study in chosen:
            for spec in STUDIES[study].runs(quick):
                owners.setdefault(spec.key, (spec, []))[1].append(STUDIES[study])
        for spec, studies in list(owners.values())[index::count]:
            if all(study.measured(spec, quick) for study in studies):  # every study has kept what it needs
                continue
            try:
                ensure_trained(spec, root, quick=quick, progress=False)
            except DivergenceError as error:  # a result, kept with the run: the study reports it
                print(f"{spec.key}: {error}", flush=True)
        return 0
    if count > 1:
        return work_on_shard(chosen, root, quick, index, count)
    timings_path = artifacts / "timings.json"
    for study in chosen:
        started = time.perf_counter()
        out = root / study
        out.mkdir(parents=True, exist_ok=True)
        set_compute(not _CACHED.value)
        published = artifacts / study
        try:
            STUDIES[study].run(root, out, quick)
        except Pending as missing:
            if has_results(published):  # this machine lacks the runs: the committed section stands
                print(f"{study}: pending here ({missing}); its published section is kept", flush=True)
                continue
            STUDIES[study].write_pending(out, missing)
        published.mkdir(parents=True, exist_ok=True)
        for path in out.iterdir():  # the cap keeps the repository light; a 64 px sample figure is ~400 KB
            if path.suffix in (".csv", ".json", ".png", ".md") and path.stat().st_size < 600_000:
                shutil.copy2(path, published / path.name)
        if not _CACHED.value:  # a cached report's time says nothing about the study
            timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
            timings[study] = round(time.perf_counter() - started, 1)
            timings_path.write_text(json.dumps(timings, indent=1))
        record_compute(compute_used(root, quick), artifacts)
        publish(report, artifacts)
        print(f"{study}: {time.perf_counter() - started:.0f} s; report {report}", flush=True)
    return 0


def _main(argv):
    try:
        return main(argv)
    except TrainingInterrupted as interrupted:  # Ctrl-C / SIGTERM: checkpointed; the same command resumes
        print(f"experiments: {interrupted}", file=sys.stderr)
        return 128 + int(interrupted.signum)


if __name__ == "__main__":
    sys.exit(app.run(_main))
