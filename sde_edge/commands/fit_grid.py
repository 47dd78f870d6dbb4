"""sde-edge fit-grid --workdir DIR --sampler dpmpp_2m --steps 6 [--n 256 --reference_steps 1000 --t0 1]

Fits a K-step time grid to the run's EMA model and a sampler (one that draws noise is driven by one
Brownian path per draw on every grid; the method and its cost: docs/samplers.md, "Fitted grids"), on
a calibration batch drawn from the prior with its own seed stream (never the noise of an
evaluation), and keeps it in DIR/grids/SAMPLER_K.json with what it was fitted for (the weights, the
process, the sampler's options, K, the start time) and its error beside the generic grids' on a
held-out batch. With ``--t0`` below 1 the grid is for ``sdedit --t0``: the calibration states are
train images perturbed to t0 by the forward process (standing in for the guides, which SDEdit
perturbs the same way), the held-out ones the next ``--n`` train images.
``sample``, ``eval-samples``, ``sdedit`` and ``tools/compare_samplers.py`` use it with ``--grid fitted``.
"""
from absl import flags

from sde_edge.commands.sampler_flags import define_sampler_flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder.")
_N = flags.DEFINE_integer("n", 256, "Calibration batch (and as many held-out draws).", lower_bound=8)
_REFERENCE_STEPS = flags.DEFINE_integer("reference_steps", 1000, "Steps of the reference solution (uniform grid).",
                                        lower_bound=2)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the calibration and held-out streams.", lower_bound=0)
_T0 = flags.DEFINE_float("t0", 1.0, "Where sampling starts: 1 for the prior (sample, eval-samples); below 1 "
                         "for sdedit --t0 (train images perturbed to t0).")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K")
_CHOSEN = define_sampler_flags(with_grid=False)


def main():
    import torch

    from sde_edge.commands.common import open_run
    from sde_edge.sampling.fitted import all_options, fit_grid, fitted_for, save_fitted

    if not 0.0 < _T0.value <= 1.0:
        raise ValueError(f"--t0 must lie in (0, 1], got {_T0.value!r}")
    run, device, _ = open_run(_WORKDIR.value, _DEVICE.value, compile_backend=_CHOSEN.compile_backend())
    name, steps, _, given = _CHOSEN(run.config.sampling)
    with torch.no_grad():
        calibration, held_out = _starting_states(run, device)
        times, report = fit_grid(run.model, run.sde, calibration, sampler=name, steps=steps, held_out=held_out,
                                 t_start=_T0.value, reference_steps=_REFERENCE_STEPS.value, progress=True, **given)
    report.update(n=_N.value, seed=_SEED.value, step=run.step, checkpoint=str(run.path))
    path = save_fitted(run.workdir, times, sampler=name, steps=steps, options=all_options(name, given),
                       fitted_for=fitted_for(run, _T0.value), report=report)
    errors = report["held_out"]
    generic = min((v, k) for k, v in errors.items() if k != "fitted")
    print(f"grid for {name} at {steps} steps: {', '.join(f'{t:.4g}' for t in times)}")
    print(f"held-out RMSE against {name}@{_REFERENCE_STEPS.value}: fitted {errors['fitted']:.4g}, best generic "
          f"({generic[1]}) {generic[0]:.4g}; {report['nfe']} NFE of {_N.value} draws, {report['seconds']:.0f} s")
    command = "sample" if _T0.value == 1.0 else f"sdedit --t0 {_T0.value:g}"
    print(f"wrote {path}; {command} with --sampler {name} --steps {steps} --grid fitted")


def _starting_states(run, device):
    """(calibration, held-out) states where sampling starts: prior draws from their own streams at
    t0 = 1; below it, the first and the next --n train images (encoded, for a latent run) perturbed
    to t0, as sdedit perturbs its guides."""
    from sde_edge.config import image_shape
    from sde_edge.data.datasets import load_dataset
    from sde_edge.sampling.fitted import calibration_states, perturbed_states

    n, seed = _N.value, _SEED.value
    if _T0.value == 1.0:
        shape = image_shape(run.config, n)
        return tuple(calibration_states(run.sde, shape, seed, f"fit-grid/{part}", device)
                     for part in ("calibration", "held-out"))
    train = load_dataset(run.config.data, "train")
    if len(train) < 2 * n:
        raise ValueError(f"--n {n}: --t0 below 1 takes 2 x --n train images, the train split has {len(train)}")
    clean = run.encode(train.first(2 * n)).to(device)
    return tuple(perturbed_states(run.sde, part, _T0.value, seed, f"fit-grid/{name}")
                 for part, name in zip(clean.split(n), ("calibration-t0", "held-out-t0")))
