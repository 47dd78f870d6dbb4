"""Measured order of convergence of the deterministic samplers on the log-SNR grid.

    python tools/solver_order.py --out runs/solver_order

Two cases, both exact or nearly so, with no network in the way:

* ``gaussian``: Gaussian data N(m, s^2) under the isotropic process, where the probability-flow
  ODE has a closed form: x_t = a_t m + r_t (x_1 - a_1 m) / r_1 with r_t = sqrt(a_t^2 s^2 + b_t^2)
  (paper_appendix/math.md, section 5.3).
* ``mixture``: the K = 3 mixture oracle of edge-rich 8x8 images under the edge-preserving
  process (tau ``linear_ramp`` and ``linear``), against the same sampler with 4,000 steps.

Errors are the median over samples of the max over pixels (a mixture path near a decision
boundary may switch modes at coarse K, which would swamp a max over samples), taken at t* = the
last grid time before t = 0 of the coarsest run: log-SNR grids with K and 2K steps share their
times, so every K that divides 4,000 and is a multiple of the coarsest K reaches t* exactly. The
slope is fitted over the three finest K (the asymptotic range). Writes order.csv and order.png.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from absl import app, flags

from sde_edge.config import default_diffusion
from sde_edge.figures import plt, save_figure
from sde_edge.oracle import GaussianOracle, MixtureOracle, rectangle_images
from sde_edge.processes.registry import build_sde
from sde_edge.sampling import sample
from sde_edge.tables import markdown_table, write_csv

_STEPS = flags.DEFINE_list("steps", ["5", "10", "20", "40", "80"], "Step counts (each a multiple of the first).")
_SAMPLERS = flags.DEFINE_list("samplers", ["ddim", "dpmpp_2m", "dpmpp_3m"], "Deterministic samplers to measure.")
_REFERENCE_STEPS = flags.DEFINE_integer("reference_steps", 4000, "Steps of the mixture cases' reference run.")
_N = flags.DEFINE_integer("n", 64, "Samples (paths) per case.")
_OUT = flags.DEFINE_string("out", "runs/solver_order", "Output folder.")


def _state_at(name, model, sde, x1, steps, index):
    """The sampler's state at grid index ``index`` of a ``steps``-step log-SNR grid."""

    reports = []
    sample(name, model, sde, x1.shape, steps=steps, x_init=x1, grid="logsnr", callback=reports.append)
    return reports[index]["t"], reports[index]["x"]


def main(argv):
    del argv

    steps = [int(k) for k in _STEPS.value]
    coarse = steps[0]
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    rows = []
    cases = {"gaussian, isotropic": "isotropic", "mixture, linear_ramp": "linear_ramp", "mixture, linear": "linear"}
    for case, tau in cases.items():
        sde = build_sde(default_diffusion(tau=tau))
        if case.startswith("gaussian"):
            model = GaussianOracle(0.1, 0.3, sde, "x0")
            x1 = torch.randn(_N.value, 1, 4, 4, generator=generator, dtype=torch.float64)
            one = torch.tensor(1.0, dtype=torch.float64)

            def exact(t, sde=sde, model=model, x1=x1, one=one):
                t = torch.tensor(t, dtype=torch.float64)
                return sde.schedule.signal(t) * 0.1 + model.marginal_std(t, x1) / model.marginal_std(one, x1) * (
                    x1 - sde.schedule.signal(one) * 0.1)
        else:
            model = MixtureOracle(rectangle_images(3).double(), (0.5, 0.3, 0.2), sde)
            x1 = model.sample_marginal(1.0, _N.value, generator=generator)
        for name in _SAMPLERS.value:
            if not case.startswith("gaussian"):
                fine = _REFERENCE_STEPS.value
                t_star, reference = _state_at(name, model, sde, x1, fine, (coarse - 1) * fine // coarse)
            for k in steps:
                t, x = _state_at(name, model, sde, x1, k, (coarse - 1) * k // coarse)
                target = exact(t) if case.startswith("gaussian") else reference
                rows.append({"case": case, "sampler": name, "steps": k, "t": round(float(t), 6),
                             "error": float((x - target).abs().flatten(1).amax(1).median())})
    slopes = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for case in cases:
        for name in _SAMPLERS.value:
            points = [(r["steps"], r["error"]) for r in rows if r["case"] == case and r["sampler"] == name]
            ks, errors = map(np.array, zip(*points))
            slope = -np.polyfit(np.log(ks[-3:]), np.log(errors[-3:]), 1)[0]
            slopes.append({"case": case, "sampler": name, "slope (3 finest K)": round(float(slope), 2),
                           **{f"K={k}": f"{e:.2e}" for k, e in points}})
            ax.loglog(ks, errors, marker="o", label=f"{name}, {case} (slope {slope:.2f})")
    ax.set_xlabel("steps K (log-SNR grid)")
    ax.set_ylabel("median over samples of the max error at t*")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save_figure(fig, out / "order.png")
    write_csv(rows, out / "order.csv")
    table = markdown_table(slopes)
    (out / "order.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
