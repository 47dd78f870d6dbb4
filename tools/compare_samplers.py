"""Compare samplers x grids x step counts on a trained run or on the built-in mixture oracle.

    python tools/compare_samplers.py --oracle --out runs/compare_oracle
    python tools/compare_samplers.py --workdir runs/digits_edge --out runs/compare_digits
    python tools/compare_samplers.py --workdir DIR --n 1000 --samplers ddim,dpmpp_2m,heun --steps 5,10,15,20,40 \
        --grids uniform,logsnr --reference ddpm@500    # the few-step study
    python tools/compare_samplers.py --workdir DIR --samplers dpmpp_2m --steps 4,8 --grids uniform,fitted \
        --students DIR/distill --reference ddpm@500   # fitted grids and distilled students, paired

With --workdir, quality is measured by ``sde_edge.metrics`` against the run's --split (test), in
the features --features picks (auto: Inception if available, else the dataset's classifier);
--metric chooses the headline (default fd). The defaults finish in about a minute on 2 cores;
the flags above give the full study. Writes results.csv, results.md, quality_vs_nfe.png,
nfe_to_match_ddpm.json (the smallest NFE within 10% of the reference), with --reference also
nfe_to_match_paired.json (within 10% by two paired standard errors) and a sample grid per sampler
and grid into --out. Each finished setting is kept in --out/settings/ (keyed by the setting, the
checkpoint, the features and --n), so a comparison that was interrupted resumes where it stopped;
delete that folder to measure everything again. The figure shows each setting with one standard error
and, with --reference, a second panel of the paired differences with two paired standard errors;
--replot re-draws it from --out/results.csv alone.
"""
import json
import sys
from pathlib import Path

import torch
from absl import app, flags

from sde_edge.config import default_diffusion, image_shape
from sde_edge.data.datasets import load_dataset
from sde_edge.experiments.bridge import add_bridged_differences, nfe_to_match_bridged
from sde_edge.experiments.coupling import SharedPath
from sde_edge.experiments.nfe_plot import plot_quality_vs_nfe
from sde_edge.experiments.sampler_comparison import (
    MetricsJudge,
    OracleJudge,
    SamplerSpec,
    SettingCache,
    add_paired_differences,
    nfe_to_match,
    nfe_to_match_paired,
    parse_reference,
    reference_value,
    run_comparison,
)
from sde_edge.metrics.features import build_features
from sde_edge.oracle import MixtureOracle, rectangle_images
from sde_edge.processes.registry import build_sde
from sde_edge.restore import load_run
from sde_edge.sampling.fitted import fitted_grid_of
from sde_edge.tables import markdown_table, read_csv, write_csv

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run (its newest checkpoint, EMA weights).")
_ORACLE = flags.DEFINE_bool("oracle", False, "Use the mixture oracle (3 edge-rich 8x8 images) instead of a checkpoint.")
_TAU = flags.DEFINE_string("tau", "linear_ramp", "--oracle only: the transition function of the process.")
_SAMPLERS = flags.DEFINE_list(
    "samplers",
    ["ddpm", "ddim", "dpmpp_2m", "heun"],
    "Samplers: name, name:method (torchsde:srk) or name:key=value[:key=value] (edm:s_churn=10).",
)
_STEPS = flags.DEFINE_list("steps", ["10", "25"], "Step counts.")
_REFERENCE = flags.DEFINE_string("reference", None, "SAMPLER@STEPS (e.g. ddpm@500) run once on the uniform grid as the "
                                 "target of nfe_to_match; default: ddpm at the largest --steps, among the settings.")
_BASELINE_GRID = flags.DEFINE_string("baseline_grid", "uniform", "Every row on another grid is also paired with "
                                     "this grid's row of the same sampler and steps (fd_vs_<grid>, _se).")
_GRIDS = flags.DEFINE_list("grids", ["uniform"], "Time grids: uniform, power, logsnr, edm, fitted (--workdir: "
                           "the grids sde-edge fit-grid kept in the run, one per sampler and step count).")
_STUDENTS = flags.DEFINE_list("students", [], "--workdir: distilled students to add as rows (grid 'distilled', ddim at "
                               "each student's K), sampled from the same initial noise: run folders, or a "
                               "DIR/distill folder for all its rounds.")
_N = flags.DEFINE_integer("n", 200, "Samples per setting.")
_REFERENCE_REPORT = flags.DEFINE_string("reference_report", None, "Instead of running --reference: the metrics.json "
                                        "of an eval-samples report of the same run (same features and split) whose "
                                        "sampler and steps it records.")
_BRIDGE = flags.DEFINE_string("bridge", None, "--workdir with --reference: SAMPLER@STEPS, deterministic at a high NFE "
                              "(e.g. dpmpp_2m@100), through which each row's difference to the reference is also "
                              "taken: FD(row) - FD(bridge) paired on the shared noise plus FD(bridge) - FD(reference) "
                              "measured once on --bridge_n samples of each (seed --seed + 1); columns fd_diff_bridged "
                              "(_se), nfe_to_match_bridged.json. See sde_edge.experiments.bridge.")
_BRIDGE_N = flags.DEFINE_integer("bridge_n", 10_000, "--bridge: samples of the bridge and of the reference in the "
                                 "large pair.")
_COUPLE = flags.DEFINE_bool("couple", False, "--workdir with --reference: every setting reads its step noise from "
                            "the one Brownian path per draw that the reference reads (sde_edge.experiments.coupling), "
                            "so a stochastic sampler's paired difference to it is not two noises' difference.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed (the same for every setting).")
_METRIC = flags.DEFINE_string("metric", "fd", "--workdir: headline metric (fd, kid, precision, recall, swd_mean).")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "val", "test"], "--workdir: the images the samples are judged "
                           "against; choose a sampler's options on train or val, report on test.")
_FEATURES = flags.DEFINE_enum("features", "auto", ["auto", "inception", "classifier"], "--workdir: feature space.")
_OUT = flags.DEFINE_string("out", "runs/compare", "Output folder.")
_REPLOT = flags.DEFINE_bool("replot", False, "Only re-draw --out/quality_vs_nfe.png from --out/results.csv (with "
                            "--reference naming its target); nothing is loaded or sampled.")


def _oracle_setup():
    sde = build_sde(default_diffusion(tau=_TAU.value))
    images = rectangle_images(3)
    weights = (0.5, 0.3, 0.2)
    oracle = MixtureOracle(images, weights, sde)
    x_init = oracle.sample_marginal(1.0, _N.value, generator=torch.Generator().manual_seed(_SEED.value))
    return oracle, sde, x_init, OracleJudge(images, weights)


def _parsed_reference():
    try:
        return parse_reference(_REFERENCE.value)
    except ValueError as error:
        raise app.UsageError(f"--reference: {error}") from None


def replot(out):
    """quality_vs_nfe.png again from a finished comparison's results.csv (e.g. after a change of style)."""
    path = out / "results.csv"
    if not path.is_file():
        raise app.UsageError(f"--replot: {path} does not exist (run the comparison first)")
    rows = read_csv(path)
    if not rows:
        raise app.UsageError(f"--replot: {path} has a header and no rows (an interrupted comparison? run it again)")
    missing = [key for key in ("sampler", "grid", "steps", "nfe", _METRIC.value) if key not in rows[0]]
    if missing:
        raise app.UsageError(f"--replot: {path} has no column {missing[0]!r} (a compare_samplers results.csv?)")
    reference = None
    if _REFERENCE.value:
        value = reference_value(rows, *_parsed_reference(), _METRIC.value)
        if not value:
            raise app.UsageError(f"--reference {_REFERENCE.value}: no such row in {path}")
        reference = (_REFERENCE.value, float(value))
    plot_quality_vs_nfe(rows, _METRIC.value, out / "quality_vs_nfe.png", reference=reference)
    print(f"wrote {out / 'quality_vs_nfe.png'}")
    return 0


def _checkpoint_identity(run):
    """What a cached setting of ``run`` is keyed by: its checkpoint, step and the file's time."""
    return {"checkpoint": str(run.path), "step": run.step, "modified": run.path.stat().st_mtime_ns}


def _judged_split(run):
    try:
        return load_dataset(run.config.data, _SPLIT.value)
    except ValueError as error:  # 'val' of a run that holds none out
        raise app.UsageError(f"--split {_SPLIT.value}: {error}") from None


def _student_runs(run):
    """The runs --students names (a distill folder: its rounds, largest K first), each checked to be a
    student of ``run``'s weights; one line for a folder that is not one."""
    from sde_edge.training.distill import TEACHER_FILE

    if _STUDENTS.value and run is None:
        raise app.UsageError("--students needs --workdir (the students' teacher), not --oracle")
    students = []
    for text in _STUDENTS.value:
        path = Path(text)
        rounds = sorted(path.glob("steps_*"), key=lambda p: -int(p.name.split("_")[1])) if path.is_dir() else []
        try:
            found = [load_run(folder) for folder in rounds or [path]]
            first_teacher = load_run(found[0].workdir / TEACHER_FILE) if (found[0].workdir / TEACHER_FILE).is_file() \
                else None
        except (FileNotFoundError, ValueError) as error:
            raise app.UsageError(f"--students {text}: {error}") from None
        if any(student.config.get("distill") is None for student in found) or first_teacher is None:
            raise app.UsageError(f"--students {text}: not a distilled student (sde-edge distill makes them)")
        if rounds and first_teacher.model_digest != run.model_digest:
            raise app.UsageError(f"--students {text}: distilled from other weights than --workdir's newest "
                                 f"checkpoint ({run.path}); distil it again")
        students += found
    return students


def _parsed_bridge():
    """(sampler, steps) of --bridge, refused in one line where it cannot work (checked before sampling)."""
    if _ORACLE.value or not _REFERENCE.value:
        raise app.UsageError("--bridge needs --workdir and --reference (the reference it bridges to)")
    try:
        return parse_reference(_BRIDGE.value)
    except ValueError as error:
        raise app.UsageError(f"--bridge: {error}") from None


def _bridge(rows, model, sde, shape, judge, cache, reference):
    """The bridge's row on the shared noise (appended to ``rows``), the large pair's term
    (FD(bridge) - FD(reference), s.e.) and its reference FD (the 10% band's base, at the large n),
    each setting cached like the others."""
    label, steps = _parsed_bridge()
    spec = SamplerSpec.parse(label)
    rows += run_comparison(model, sde, shape, [spec], [steps], judge, seed=_SEED.value, cache=cache, progress=False)
    large = (_BRIDGE_N.value, *shape[1:])
    pair = [run_comparison(model, sde, large, [s], [k], judge, seed=_SEED.value + 1, cache=cache)[0]
            for s, k in ((spec, steps), (SamplerSpec.parse(reference[0]), reference[1]))]
    unusable = next((row for row in [rows[-1], *pair] if "_features" not in row), None)
    if unusable is not None:
        raise app.UsageError(f"--bridge {_BRIDGE.value}: {unusable['sampler']} gave no features to pair "
                             f"({unusable.get('skipped') or 'not a metrics comparison'})")
    return rows[-1], judge.paired_fd_difference(pair[0]["_features"], pair[1]["_features"]), pair[1]["fd"]


def main(argv):
    del argv
    if _REPLOT.value:
        return replot(Path(_OUT.value))
    if _ORACLE.value == (_WORKDIR.value is not None):
        raise app.UsageError("give exactly one of --oracle and --workdir")
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    if _ORACLE.value:
        model, sde, x_init, judge = _oracle_setup()
        shape = tuple(x_init.shape)
    else:
        run = load_run(_WORKDIR.value)
        model, sde, x_init = run.model, run.sde, None
        judge = MetricsJudge(build_features(_FEATURES.value, run.config.data),
                             _judged_split(run).first(10**9), primary=_METRIC.value)
        shape = image_shape(run.config, _N.value)
    identity = ({"oracle": _TAU.value} if _ORACLE.value else
                {**_checkpoint_identity(run), "features": judge.features.label, "metric": judge.primary,
                 **({} if _SPLIT.value == "test" else {"split": _SPLIT.value})})
    cache = SettingCache(out / "settings", {**identity, "n": _N.value})
    specs = [SamplerSpec.parse(text) for text in _SAMPLERS.value]
    steps = [int(k) for k in _STEPS.value]
    students = _student_runs(None if _ORACLE.value else run)  # checked before anything is computed
    if _BRIDGE.value:
        _parsed_bridge()  # so is the bridge
    reference_label, reference_steps = "ddpm", max(steps)
    coupling = None
    if _COUPLE.value:
        if _ORACLE.value or not _REFERENCE.value or _REFERENCE_REPORT.value:
            raise app.UsageError("--couple needs --workdir and --reference (the sampler whose path all settings read)")
        label, k = _parsed_reference()
        coupling = SharedPath(sde, shape, _SEED.value, (SamplerSpec.parse(label).name, k))
    rows = []
    if _REFERENCE_REPORT.value:
        path = Path(_REFERENCE_REPORT.value)
        if not path.is_file():
            raise app.UsageError(f"--reference_report {path} is not a file (an eval-samples metrics.json)")
        report = json.loads(path.read_text())
        missing = [k for k in ("sampler", "steps", "nfe", "features", judge.primary) if k not in report]
        if missing:
            raise app.UsageError(f"--reference_report {path} lacks {missing}")
        if report["features"] != judge.features.label:  # numbers of two feature spaces never compare
            raise app.UsageError(f"--reference_report {path} was measured in {report['features']!r}, "
                                 f"this comparison in {judge.features.label!r}")
        if report.get("split", "test") != _SPLIT.value:
            raise app.UsageError(f"--reference_report {path} was judged against split {report.get('split')!r}, "
                                 f"this comparison against {_SPLIT.value!r}")
        reference_label, reference_steps = report["sampler"], int(report["steps"])
        keep = ("fd", "fd_stderr", "kid", "precision", "recall", "swd_mean", "confident")
        rows.append({"sampler": reference_label, "grid": "uniform", "steps": reference_steps, "tolerance": "",
                     "nfe": report["nfe"], "seconds": "", **{k: report[k] for k in keep if k in report},
                     "note": f"from {_REFERENCE_REPORT.value} (n = {report.get('n')})"})
    elif _REFERENCE.value:
        reference_label, reference_steps = _parsed_reference()
        rows += run_comparison(model, sde, shape, [SamplerSpec.parse(reference_label)], [reference_steps], judge,
                               seed=_SEED.value, x_init=x_init, out_dir=out, cache=cache, coupling=coupling)
    fitted = None if _ORACLE.value else (
        lambda spec, k: fitted_grid_of(run, spec.name, k, spec.options))
    rows += run_comparison(model, sde, shape, specs, steps, judge, grids=_GRIDS.value, seed=_SEED.value, x_init=x_init,
                           out_dir=out, cache=cache, fitted=fitted, coupling=coupling)
    for student in students:
        rows += run_comparison(student.model, student.sde, shape, [SamplerSpec.parse("ddim")],
                               [int(student.config.distill.steps)], judge, seed=_SEED.value, out_dir=None,
                               cache=SettingCache(out / "settings",
                                                  {**identity, **_checkpoint_identity(student), "n": _N.value}),
                               progress=False)
        rows[-1]["grid"] = "distilled"
    if _BRIDGE.value:
        bridge_row, term, bridge_target = _bridge(rows, model, sde, shape, judge, cache,
                                                  (reference_label, reference_steps))
        add_bridged_differences(rows, judge, bridge_row, term)
    add_paired_differences(rows, judge, reference_label, reference_steps, _BASELINE_GRID.value)
    write_csv(rows, out / "results.csv")
    table = markdown_table(rows)
    (out / "results.md").write_text(table)
    target = reference_value(rows, reference_label, reference_steps, judge.primary)
    plot_quality_vs_nfe(rows, judge.primary, out / "quality_vs_nfe.png", title=f"{sde!r}",
                        reference=None if target is None else (f"{reference_label}@{reference_steps}", target))
    matches = nfe_to_match(rows, reference_label, reference_steps, judge.primary)
    (out / "nfe_to_match_ddpm.json").write_text(json.dumps(matches, indent=1))
    if _BRIDGE.value:
        bridged = nfe_to_match_bridged(rows, bridge_target)
        (out / "nfe_to_match_bridged.json").write_text(json.dumps(bridged, indent=1))
        print(f"NFE within 10% of {reference_label}@{reference_steps} (FD {bridge_target:.4g} on {_BRIDGE_N.value} "
              f"samples) by 2 bridged standard errors, through {_BRIDGE.value}: {bridged}")
    resolved = nfe_to_match_paired(rows, reference_label, reference_steps)
    if resolved:
        (out / "nfe_to_match_paired.json").write_text(json.dumps(resolved, indent=1))
    print(table)
    print(
        f"NFE at which each sampler is within 10% of {reference_label}@{reference_steps} on {judge.primary}: {matches}"
    )
    if resolved:
        print(f"... and within 10% by 2 paired standard errors (resolved): {resolved}")
    print(f"wrote {out}/results.csv, results.md, quality_vs_nfe.png, nfe_to_match_ddpm.json, samples_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
