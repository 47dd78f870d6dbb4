"""Compare samplers x step counts on a trained checkpoint or on the built-in mixture oracle.

    python tools/compare_samplers.py --oracle --out runs/compare_oracle
    python tools/compare_samplers.py --workdir runs/digits_edge_ramp --out runs/compare_digits

Writes results.csv, results.md, quality_vs_nfe.png and a sample grid per sampler into --out.
"""
import json
from pathlib import Path

import torch
from absl import app, flags

from sde_edge.comparison import (DigitsJudge, OracleJudge, SamplerSpec, markdown_table, nfe_to_match,
                                 plot_quality_vs_nfe, run_comparison, write_csv)

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run (its newest checkpoint, EMA weights).")
_ORACLE = flags.DEFINE_bool("oracle", False, "Use the mixture oracle (3 edge-rich 8x8 images) instead of a checkpoint.")
_TAU = flags.DEFINE_string("tau", "linear_ramp", "--oracle only: the transition function of the process.")
_SAMPLERS = flags.DEFINE_list("samplers", ["ddpm", "ddim", "euler_maruyama", "torchsde:euler", "pc", "heun", "ode"],
                              "Samplers, name or name:method.")
_STEPS = flags.DEFINE_list("steps", ["10", "20", "50", "100", "250", "500"], "Step counts.")
_N = flags.DEFINE_integer("n", 256, "Samples per setting.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed (the same for every setting).")
_OUT = flags.DEFINE_string("out", "runs/compare", "Output folder.")


def _oracle_setup():
    from sde_edge.config import default_diffusion
    from sde_edge.oracle import MixtureOracle, rectangle_images
    from sde_edge.sde import EdgePreservingSDE

    sde = EdgePreservingSDE(default_diffusion(tau=_TAU.value))
    images = rectangle_images(3)
    weights = (0.5, 0.3, 0.2)
    oracle = MixtureOracle(images, weights, sde)
    x_init = oracle.sample_marginal(1.0, _N.value, generator=torch.Generator().manual_seed(_SEED.value))
    return oracle, sde, x_init, OracleJudge(images, weights), "chi2"


def main(argv):
    del argv
    if _ORACLE.value == (_WORKDIR.value is not None):
        raise app.UsageError("give exactly one of --oracle and --workdir")
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    if _ORACLE.value:
        model, sde, x_init, judge, metric = _oracle_setup()
        shape = tuple(x_init.shape)
    else:
        from sde_edge.restore import load_run

        run = load_run(_WORKDIR.value)
        c = run.config
        model, sde, x_init, judge, metric = run.model, run.sde, None, DigitsJudge(), "frechet"
        shape = (_N.value, c.data.num_channels, c.data.image_size, c.data.image_size)
    specs = [SamplerSpec.parse(text) for text in _SAMPLERS.value]
    rows = run_comparison(model, sde, shape, specs, [int(k) for k in _STEPS.value], judge, seed=_SEED.value,
                          x_init=x_init, out_dir=out)
    write_csv(rows, out / "results.csv")
    table = markdown_table(rows)
    (out / "results.md").write_text(table)
    plot_quality_vs_nfe(rows, metric, out / "quality_vs_nfe.png", title=f"{sde!r}")
    matches = nfe_to_match(rows, "ddpm", max(int(k) for k in _STEPS.value), metric)
    (out / "nfe_to_match_ddpm.json").write_text(json.dumps(matches, indent=1))
    print(table)
    print(f"NFE at which each sampler is within 10% of ddpm at {max(int(k) for k in _STEPS.value)} steps on {metric}: {matches}")
    print(f"wrote {out}/results.csv, results.md, quality_vs_nfe.png, samples_*.png")


if __name__ == "__main__":
    app.run(main)
