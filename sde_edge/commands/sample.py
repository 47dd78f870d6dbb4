"""sde-edge sample --workdir DIR --n 64 --steps 100 --seed S --sampler ddpm --out FILE.npz

Draws samples from the EMA weights of the run's newest checkpoint; writes the array
``samples`` (N, C, H, W) in [-1, 1] to the .npz and a grid PNG beside it.
"""
from pathlib import Path

import numpy as np
import torch
from absl import flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (or a checkpoint file).")
_N = flags.DEFINE_integer("n", 64, "Number of samples.")
_STEPS = flags.DEFINE_integer("steps", 100, "Sampler steps.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_SAMPLER = flags.DEFINE_string("sampler", "ddpm", "Sampler name (see sde_edge.sampling.SAMPLERS).")
_GRID = flags.DEFINE_string("grid", "uniform", "Time grid: uniform | power | logsnr.")
_OUT = flags.DEFINE_string("out", "samples.npz", "Output .npz; the grid PNG goes beside it.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Samples per batch.")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    del argv
    from sde_edge.figures import save_grid
    from sde_edge.restore import load_run
    from sde_edge.sampling import sample

    device = ("cuda" if torch.cuda.is_available() else "cpu") if _DEVICE.value == "auto" else _DEVICE.value
    run = load_run(_WORKDIR.value, device=device)
    c = run.config
    generator = torch.Generator(device).manual_seed(_SEED.value)
    chunks, nfe = [], 0
    for start in range(0, _N.value, _BATCH.value):
        shape = (min(_BATCH.value, _N.value - start), c.data.num_channels, c.data.image_size, c.data.image_size)
        result = sample(_SAMPLER.value, run.model, run.sde, shape, steps=_STEPS.value, generator=generator,
                        grid=_GRID.value, progress=True, device=device)
        chunks.append(result.samples.clamp(-1, 1).cpu())
        nfe = result.nfe
    samples = torch.cat(chunks)
    out = Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, samples=samples.numpy())
    grid = save_grid(samples[:256], out.with_suffix(".png"))
    print(f"{len(samples)} samples ({_SAMPLER.value}, {nfe} NFE per batch) from step {run.step}: {out}, grid {grid}")
