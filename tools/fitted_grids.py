"""Fitted grids against the generic ones on the mixture oracle, where the exact model leaves only the
sampler's own error.

    python tools/fitted_grids.py --out paper_appendix/reproduction/few_step/fitted_oracle

For each process (tau ``linear_ramp`` and the paper's ``linear`` with its jump at t_phi), each
deterministic sampler and each K, a grid is fitted (``sde_edge.sampling.fitted.fit_grid``) on a
calibration batch and every grid is measured on a held-out batch of other noise: the RMSE of the
K-step solution against the sampler's 1,000-step one. Writes results.csv, results.md and
error_vs_steps.png (one panel per process and sampler).
"""
import sys
from pathlib import Path

from absl import app, flags

from sde_edge.config import default_diffusion
from sde_edge.figures import plt, save_figure
from sde_edge.oracle import MixtureOracle, rectangle_images
from sde_edge.processes import build_sde
from sde_edge.sampling.fitted import calibration_states, fit_grid
from sde_edge.tables import markdown_table, write_csv

_STEPS = flags.DEFINE_list("steps", ["3", "4", "6", "8", "10"], "Step counts.")
_SAMPLERS = flags.DEFINE_list("samplers", ["ddim", "dpmpp_2m"], "Deterministic samplers.")
_TAUS = flags.DEFINE_list("taus", ["linear_ramp", "linear"], "Transition functions of the edge process.")
_N = flags.DEFINE_integer("n", 1024, "Calibration draws (and as many held-out draws).")
_OUT = flags.DEFINE_string("out", "runs/fitted_oracle", "Output folder.")


def _plot(rows, path):
    panels = sorted({(r["tau"], r["sampler"]) for r in rows})
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for axis, (tau, sampler) in zip(axes[0], panels):
        mine = [r for r in rows if (r["tau"], r["sampler"]) == (tau, sampler)]
        for grid in [key for key in mine[0] if key.startswith("rmse_")]:
            axis.plot([r["steps"] for r in mine], [r[grid] for r in mine], marker="o", label=grid[5:],
                      linewidth=2.5 if grid == "rmse_fitted" else 1.2)
        axis.set(title=f"{sampler}, tau {tau}", xlabel="steps (NFE)", yscale="log")
    axes[0][0].set_ylabel("held-out RMSE vs 1,000 steps")
    axes[0][-1].legend(fontsize=8)
    return save_figure(figure, path)


def main(argv):
    del argv
    out = Path(_OUT.value)
    rows = []
    for tau in _TAUS.value:
        sde = build_sde(default_diffusion(tau=tau))
        oracle = MixtureOracle(rectangle_images(3), (0.5, 0.3, 0.2), sde)
        shape = (_N.value, 1, 8, 8)
        calibration = calibration_states(sde, shape, 0, "fitted-grids/calibration")
        held_out = calibration_states(sde, shape, 0, "fitted-grids/held-out")
        for sampler in _SAMPLERS.value:
            for steps in (int(k) for k in _STEPS.value):
                times, report = fit_grid(oracle, sde, calibration, sampler=sampler, steps=steps, held_out=held_out)
                rows.append({"tau": tau, "sampler": sampler, "steps": steps,
                             **{f"rmse_{name}": value for name, value in report["held_out"].items()},
                             "fit_nfe": report["nfe"], "fit_seconds": report["seconds"],
                             "times": " ".join(f"{t:.4g}" for t in times)})
                print(rows[-1], flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "results.csv")
    (out / "results.md").write_text(markdown_table(rows))
    print(f"wrote {out / 'results.csv'}, results.md, {_plot(rows, out / 'error_vs_steps.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
