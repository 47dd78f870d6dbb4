"""sde-edge sample --workdir DIR [--n 64 --steps K --seed S --sampler ddpm --eta 0.5 --out FILE.npz]

Draws samples from the EMA weights of the run's newest checkpoint; writes the array ``samples``
(N, C, H, W) in [-1, 1] to the .npz and a grid PNG beside it. Sampler, steps and grid default to
the run's own ``config.sampling``; every sampler option is a flag (see the list below).
"""
from absl import flags

from sde_edge.commands.sampler_flags import define_sampler_flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (or a checkpoint file).")
_N = flags.DEFINE_integer("n", None, "Number of samples (default: the run's config.sampling.num_samples).", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed.", lower_bound=0)
_OUT = flags.DEFINE_string("out", "samples.npz", "Output .npz; the grid PNG goes beside it.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Samples per batch.", lower_bound=1)
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K")
_CHOSEN = define_sampler_flags()


def main():
    import numpy as np

    from sde_edge.commands.common import open_run
    from sde_edge.config import image_shape
    from sde_edge.figures import save_grid
    from sde_edge.sampling.batched import sample_in_batches

    run, device, out = open_run(_WORKDIR.value, _DEVICE.value, _OUT.value)
    name, steps, grid, options = _CHOSEN(run.config.sampling)
    n = _N.value or run.config.sampling.num_samples
    result = sample_in_batches(name, run.model, run.sde, image_shape(run.config, n), steps=steps, grid=grid,
                               seed=_SEED.value, batch_size=_BATCH.value, device=device, **options)
    np.savez(out, samples=result.samples.numpy())
    grid_path = save_grid(result.samples[:256], out.with_suffix(".png"))
    print(f"{n} samples ({name}, {steps} steps on the {grid} grid, {result.nfe} NFE per batch) from step {run.step}: "
          f"{out}, grid {grid_path}")
