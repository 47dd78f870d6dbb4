"""sde-edge eval-nll --workdir DIR --split test --method ode|vlb|both --n 256

Bits per dimension of a trained run on a data split, by the probability-flow ODE and/or the
per-pixel variational bound; writes results.csv, summary.json and kl_per_step.png.
"""
import json
import sys

import torch
from absl import flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (or a checkpoint file).")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "test"], "Data split.")
_METHOD = flags.DEFINE_enum("method", "both", ["ode", "vlb", "both"], "ODE likelihood, bound, or both.")
_N = flags.DEFINE_integer("n", 256, "Number of images (the first n of the split).")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Images per batch.")
_STEPS = flags.DEFINE_integer("steps", None, "Steps of the bound (default: diffusion.num_steps).")
_TRACE = flags.DEFINE_enum("trace", "hutchinson", ["hutchinson", "exact"], "Divergence of the ODE likelihood.")
_MAX_NFE = flags.DEFINE_integer("max_nfe", 20_000, "Cap on the ODE solver's evaluations per batch.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of dequantisation, probes and the bound's noise.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/eval_nll_SPLIT).")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    del argv
    from sde_edge.evaluation import evaluate_nll, evaluation_images, write_report
    from sde_edge.restore import load_run

    device = ("cuda" if torch.cuda.is_available() else "cpu") if _DEVICE.value == "auto" else _DEVICE.value
    try:
        run = load_run(_WORKDIR.value, device=device)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    method = _METHOD.value
    if method != "vlb" and not run.sde.transition.is_continuous and run.config.diffusion.variant == "matched":
        print("note: tau='linear' has no probability-flow ODE; evaluating the bound only", file=sys.stderr)
        method = "vlb"
    images = evaluation_images(run.config, _SPLIT.value, _N.value)
    rows, kl = evaluate_nll(run.model, run.sde, images, method=method, batch_size=_BATCH.value, seed=_SEED.value,
                            steps=_STEPS.value, trace=_TRACE.value, max_nfe=_MAX_NFE.value, device=device)
    meta = {"workdir": _WORKDIR.value, "checkpoint": str(run.path), "step": run.step, "split": _SPLIT.value,
            "n": len(images), "method": method, "seed": _SEED.value, "tau": run.config.diffusion.tau,
            "bound_steps": _STEPS.value or run.sde.num_steps, "trace": _TRACE.value}
    out = _OUT.value or f"{_WORKDIR.value}/eval_nll_{_SPLIT.value}"
    summary = write_report(rows, kl, out, meta)
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}/results.csv, summary.json" + (", kl_per_step.png" if kl is not None else ""))
