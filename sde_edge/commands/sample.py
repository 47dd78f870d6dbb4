"""sde-edge sample --workdir DIR [--n 64 --steps K --seed S --sampler ddpm --eta 0.5 --out FILE.npz]

Draws samples from the EMA weights of the run's newest checkpoint; writes the array ``samples``
(N, C, H, W) in [-1, 1] to the .npz and a grid PNG beside it. Sampler, steps and grid default to
the run's own ``config.sampling``; every sampler option is a flag (see the list below).
A killed run resumes at its first unfinished batch from the folder FILE.partial/ (removed when done).
"""
from absl import flags

from sde_edge.commands.common import define_generation_flags
from sde_edge.commands.sampler_flags import define_sampler_flags

_N = flags.DEFINE_integer(
    "n", None, "Number of samples (default: the run's config.sampling.num_samples).", lower_bound=1
)
_RUN = define_generation_flags("samples.npz", "Output .npz; the grid PNG goes beside it.")
_CHOSEN = define_sampler_flags()


def main():
    # imports inside main: torch and the library load only for this command (sde-edge --help stays fast)
    import numpy as np

    from sde_edge.commands.common import open_run
    from sde_edge.config import image_shape
    from sde_edge.figures import save_grid
    from sde_edge.sampling.batched import sample_in_batches

    run, device, out = open_run(_RUN.workdir.value, _RUN.device.value, _RUN.out.value,
                                compile_backend=_CHOSEN.compile_backend())
    name, steps, grid, options = _CHOSEN(run.config.sampling, run)
    n = _N.value or run.config.sampling.num_samples
    result = sample_in_batches(name, run.model, run.sde, image_shape(run.config, n), steps=steps, grid=grid,
                               seed=_RUN.seed.value, batch_size=_RUN.batch_size.value, device=device,
                               partial=out.with_suffix(".partial"), source=run.path, decode=run.decode, **options)
    np.savez(out, samples=result.samples.numpy())
    grid_path = save_grid(result.samples[:256], out.with_suffix(".png"))
    compiled = f", network compiled with {run.model.compiled_with}" if run.model.compiled_with else ""
    print(f"{n} samples ({name}, {steps} steps on the {grid} grid, {result.nfe} NFE per batch{compiled}) from step "
          f"{run.step}: {out}, grid {grid_path}")
