"""Many samples in batches: the one loop behind ``sde-edge sample``, ``eval-samples``, ``sdedit``
and the experiments."""
import torch
from tqdm.auto import tqdm

from sde_edge.sampling.registry import SampleResult, sample


def sample_in_batches(name, model, sde, shape, *, steps, seed=0, batch_size=256, device="cpu", x_init=None,
                      progress=True, **kwargs):
    """``sample`` over ``shape[0]`` images in batches of ``batch_size`` with one generator seeded
    ``seed``; returns the samples on the CPU, clipped to [-1, 1], and the NFE of one batch."""
    device = torch.device(device)
    generator = torch.Generator(device).manual_seed(seed)
    n = shape[0]
    chunks, nfe = [], 0
    for start in tqdm(range(0, n, batch_size), desc=f"sampling ({name})", disable=not progress or n <= batch_size):
        size = min(batch_size, n - start)
        init = None if x_init is None else x_init[start:start + size].to(device)
        result = sample(name, model, sde, (size,) + tuple(shape[1:]), steps=steps, generator=generator, x_init=init,
                        device=device, progress=progress and n <= batch_size, **kwargs)
        chunks.append(result.samples.clamp(-1, 1).cpu())
        nfe = result.nfe
    return SampleResult(torch.cat(chunks), nfe)
