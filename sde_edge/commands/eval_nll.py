"""sde-edge eval-nll --workdir DIR --split test --method ode|vlb|both [--n N]

Bits per dimension of a trained run on a data split, by the probability-flow ODE and/or the
per-coordinate variational bound; writes results.csv, summary.json and kl_per_step.png, and
prints the bound's term breakdown with a reading of what dominates it. --n and --batch_size
default to the run's config.eval.
"""
import json

from absl import flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (or a checkpoint file).")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "test"], "Data split.")
_METHOD = flags.DEFINE_enum("method", "both", ["ode", "vlb", "both"], "ODE likelihood, bound, or both.")
_N = flags.DEFINE_integer("n", None, "Number of images, the first n of the split (default: config.eval.num_samples).",
                          lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", None, "Images per batch (default: config.eval.batch_size).", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", None, "Steps of the bound (default: diffusion.num_steps).", lower_bound=2)
_TRACE = flags.DEFINE_enum("trace", "hutchinson", ["hutchinson", "exact"], "Divergence of the ODE likelihood.")
_MAX_NFE = flags.DEFINE_integer("max_nfe", 20_000, "Cap on the ODE solver's evaluations per batch.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of dequantisation, probes and the bound's noise.", lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/eval_nll_SPLIT).")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K")


def main():
    # imports inside main: torch and the library load only for this command (sde-edge --help stays fast)
    import sys

    from sde_edge.commands.common import open_run
    from sde_edge.nll_report import evaluate_nll, evaluation_images, write_report

    out = _OUT.value or f"{_WORKDIR.value}/eval_nll_{_SPLIT.value}"
    run, device, out = open_run(_WORKDIR.value, _DEVICE.value, out, out_is_folder=True)
    method, latent = _METHOD.value, run.first_stage is not None
    if latent and not run.sde.is_continuous:
        raise ValueError("a latent run's likelihood is the probability-flow ODE's (the bound's decoder term needs a "
                         "pixel lattice), and diffusion.tau='linear' has no ODE: train the latent run with "
                         "tau='linear_ramp'")
    if method != "vlb" and not run.sde.is_continuous:
        print("note: sigma jumps (tau='linear'), so there is no probability-flow ODE; evaluating the bound only",
              file=sys.stderr)
        method = "vlb"
    if latent and method != "ode":
        print("note: a latent run has no pixel lattice for the bound's decoder; evaluating the ODE's bits per latent "
              "dimension only (not a pixel likelihood: the decoder is left out)", file=sys.stderr)
        method = "ode"
    n, batch_size = _N.value or run.config.eval.num_samples, _BATCH.value or run.config.eval.batch_size
    images = evaluation_images(run.config, _SPLIT.value, n)
    rows, kl = evaluate_nll(run.model, run.sde, images, method=method, batch_size=batch_size, seed=_SEED.value,
                            steps=_STEPS.value, trace=_TRACE.value, max_nfe=_MAX_NFE.value, device=device,
                            latent=latent)
    meta = {"workdir": _WORKDIR.value, "checkpoint": str(run.path), "step": run.step, "split": _SPLIT.value,
            "n": len(images), "method": method, "seed": _SEED.value, "process": repr(run.sde),
            "bound_steps": _STEPS.value or run.sde.num_steps, "trace": _TRACE.value,
            "units": "bits per latent dimension (not a pixel likelihood)" if latent else "bits per pixel dimension"}
    summary = write_report(rows, kl, out, meta)
    print(json.dumps({k: v for k, v in summary.items() if k != "reading"}, indent=1))
    if "reading" in summary:
        print(summary["reading"])
    print(f"wrote {out}/results.csv, summary.json" + (", kl_per_step.png" if kl is not None else ""))
