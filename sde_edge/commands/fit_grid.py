"""sde-edge fit-grid --workdir DIR --sampler dpmpp_2m --steps 6 [--n 256 --reference_steps 1000]

Fits a K-step time grid to the run's EMA model and a deterministic sampler (the method and its cost:
docs/samplers.md, "Fitted grids"), on a calibration batch drawn from the prior with its own seed
stream (never the noise of an evaluation), and keeps it in DIR/grids/SAMPLER_K.json with what it was
fitted for (the weights, the process, the sampler's options, K) and its error beside the generic
grids' on a held-out batch. ``sample``, ``eval-samples``, ``sdedit`` and ``tools/compare_samplers.py``
use it with ``--grid fitted``.
"""
from absl import flags

from sde_edge.commands.sampler_flags import define_sampler_flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder.")
_N = flags.DEFINE_integer("n", 256, "Calibration batch (and as many held-out draws).", lower_bound=8)
_REFERENCE_STEPS = flags.DEFINE_integer("reference_steps", 1000, "Steps of the reference solution (uniform grid).",
                                        lower_bound=2)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the calibration and held-out streams.", lower_bound=0)
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K")
_CHOSEN = define_sampler_flags(with_grid=False)


def main():
    import torch

    from sde_edge.commands.common import open_run
    from sde_edge.config import image_shape
    from sde_edge.sampling.fitted import all_options, calibration_states, fit_grid, fitted_for, save_fitted

    run, device, _ = open_run(_WORKDIR.value, _DEVICE.value, compile_backend=_CHOSEN.compile_backend())
    name, steps, _, given = _CHOSEN(run.config.sampling)
    shape = image_shape(run.config, _N.value)
    calibration = calibration_states(run.sde, shape, _SEED.value, "fit-grid/calibration", device)
    held_out = calibration_states(run.sde, shape, _SEED.value, "fit-grid/held-out", device)
    with torch.no_grad():
        times, report = fit_grid(run.model, run.sde, calibration, sampler=name, steps=steps, held_out=held_out,
                                 reference_steps=_REFERENCE_STEPS.value, progress=True, **given)
    report.update(n=_N.value, seed=_SEED.value, step=run.step, checkpoint=str(run.path))
    path = save_fitted(run.workdir, times, sampler=name, steps=steps, options=all_options(name, given),
                       fitted_for=fitted_for(run), report=report)
    errors = report["held_out"]
    generic = min((v, k) for k, v in errors.items() if k != "fitted")
    print(f"grid for {name} at {steps} steps: {', '.join(f'{t:.4g}' for t in times)}")
    print(f"held-out RMSE against {name}@{_REFERENCE_STEPS.value}: fitted {errors['fitted']:.4g}, best generic "
          f"({generic[1]}) {generic[0]:.4g}; {report['nfe']} NFE of {_N.value} draws, {report['seconds']:.0f} s")
    print(f"wrote {path}; sample with --sampler {name} --steps {steps} --grid fitted")
