"""The few-step table of one trained model: the best generic grid, the grid fitted to the model and
the distilled students, each against ddpm@500 from the same initial noise (docs/samplers.md).

    python tools/few_step.py --workdir runs/digits_edge --out runs/few_step/digits_edge

Runs, each step skipped or resumed when its result is on disk (so a killed run goes on with the
same command): ``sde-edge fit-grid`` at every --steps (a grid kept for other weights is fitted
again), ``sde-edge distill`` from --distill_from steps down to --min_steps, then
``tools/compare_samplers.py`` twice: every step count at --n samples, and --decisive_steps at
--decisive_n samples, where the paired error must be small enough to call a 10% gap. Writes
OUT/all/ and OUT/decisive/ (compare_samplers' results, plot and NFE-to-match files) and
OUT/summary.md (the NFE to match ddpm@500 within 10%, point and paired, per grid).
"""
import os
import subprocess
import sys
from pathlib import Path

from absl import app, flags

from sde_edge.experiments.sampler_comparison import read_nfe_to_match

_WORKDIR = flags.DEFINE_string("workdir", None, "The trained model (a run folder).", required=True)
_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
_SAMPLER = flags.DEFINE_string("sampler", "dpmpp_2m", "The sampler whose grids are fitted (one that draws "
                                "noise is fitted on one Brownian path per draw).")
_GENERIC = flags.DEFINE_string("generic", "uniform", "The best generic grid for this model (the multistep table's).")
_STEPS = flags.DEFINE_list("steps", ["2", "4", "6", "8", "10", "15", "20"], "Step counts (NFE) of the table.")
_N = flags.DEFINE_integer("n", 1000, "Samples per setting.")
_DECISIVE_STEPS = flags.DEFINE_integer("decisive_steps", 10, "The step count measured again with --decisive_n.")
_DECISIVE_N = flags.DEFINE_integer("decisive_n", 2000, "Samples at --decisive_steps (0: skip that comparison).")
_REFERENCE = flags.DEFINE_string("reference", "ddpm@500", "What the table matches.")
_BRIDGE = flags.DEFINE_string("bridge", "dpmpp_2m@100", "compare_samplers --bridge of the --n comparison: the "
                              "deterministic sampler through which the difference to --reference is also taken.")
_BRIDGE_N = flags.DEFINE_integer("bridge_n", 10_000, "compare_samplers --bridge_n (0: no bridge).")
_FIT_N = flags.DEFINE_integer("fit_n", 64, "fit-grid --n: the calibration batch.")
_FIT_REFERENCE = flags.DEFINE_integer("fit_reference_steps", 500, "fit-grid --reference_steps.")
_DISTILL_FROM = flags.DEFINE_integer("distill_from", 64, "The first teacher's DDIM steps (0: no distillation).")
_MIN_STEPS = flags.DEFINE_integer("min_steps", 4, "The last student's steps.")
_ROUND_STEPS = flags.DEFINE_integer("round_steps", 1000, "Training steps per distillation round.")
_THREADS = flags.DEFINE_integer("threads", 1, "CPU threads of every command.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the commands and run nothing.")

TOOLS = Path(__file__).resolve().parent


def _call(*args):
    print("+", " ".join(args), flush=True)
    if _DRY_RUN.value:
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(_THREADS.value)}
    if subprocess.run(args, env=env).returncode != 0:
        raise app.UsageError(f"{' '.join(args[:4])} ... failed (its output is above); run this again to go on")


def _cli(command, *args):
    _call(sys.executable, "-m", "sde_edge.cli", command, *args)


def _has_grid(run, steps):
    """Whether a grid kept for ``run``'s newest weights and the sampler's defaults is there."""
    from sde_edge.sampling.fitted import fitted_grid_of

    try:
        fitted_grid_of(run, _SAMPLER.value, steps, {})
    except ValueError:
        return False
    return True


def _compare(out, steps, n, students, bridge=False):
    _call(sys.executable, str(TOOLS / "compare_samplers.py"), f"--workdir={_WORKDIR.value}",
          f"--samplers={_SAMPLER.value}", f"--steps={','.join(steps)}", f"--grids={_GENERIC.value},fitted",
          f"--baseline_grid={_GENERIC.value}", f"--reference={_REFERENCE.value}", f"--n={n}", f"--out={out}",
          *([f"--students={students}"] if students else []),
          *([f"--bridge={_BRIDGE.value}", f"--bridge_n={_BRIDGE_N.value}"] if bridge and _BRIDGE_N.value else []))


def _summary(out):
    bridged = bool(_BRIDGE_N.value)
    lines = [f"# Few-step sampling of {Path(_WORKDIR.value).name}", "",
             f"NFE to match {_REFERENCE.value} within 10% (point: FD within 10%; paired: the difference "
             "below 10% by two paired standard errors" +
             (f"; bridged: the same through {_BRIDGE.value}, its difference to {_REFERENCE.value} measured on "
              f"{_BRIDGE_N.value} samples each" if bridged else "") +
             "); none / not resolved: no step count of the table.", "",
             "| comparison | samples | series | point | paired |" + (" bridged |" if bridged else ""),
             "|---|---|---|---|---|" + ("---|" if bridged else "")]
    for name, n in (("all", _N.value), ("decisive", _DECISIVE_N.value)):
        found = read_nfe_to_match(Path(out) / name)
        if found is None:
            continue
        point, paired, through = found
        for series in sorted(point):
            row = f"| {name} | {n} | {series} | {point[series] or 'none'} | {paired.get(series) or 'not resolved'} |"
            if bridged:
                row += f" {'-' if through is None else through.get(series) or 'not resolved'} |"
            lines.append(row)
    (Path(out) / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv):
    del argv
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    from sde_edge.restore import load_run

    run = load_run(_WORKDIR.value)  # once: every step count's grid is checked against the same weights
    for steps in _STEPS.value:
        if not _has_grid(run, int(steps)):
            _cli("fit-grid", f"--workdir={_WORKDIR.value}", f"--sampler={_SAMPLER.value}", f"--steps={steps}",
                 f"--n={_FIT_N.value}", f"--reference_steps={_FIT_REFERENCE.value}")
    students = None
    if _DISTILL_FROM.value:
        _cli("distill", f"--workdir={_WORKDIR.value}", f"--steps={_DISTILL_FROM.value}",
             f"--min_steps={_MIN_STEPS.value}", f"--round_steps={_ROUND_STEPS.value}",
             f"--threads={_THREADS.value}", "--progress=false")
        students = str(Path(_WORKDIR.value) / "distill")
    _compare(out / "all", _STEPS.value, _N.value, students, bridge=True)
    if _DECISIVE_N.value:
        _compare(out / "decisive", [str(_DECISIVE_STEPS.value)], _DECISIVE_N.value, None)
    if not _DRY_RUN.value:
        _summary(out)
    return 0


if __name__ == "__main__":
    app.run(main)
