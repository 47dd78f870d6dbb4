"""Stroke-guided generation, SDEdit (Meng et al. 2022), as the paper uses it.

A stroke painting is an image reduced to K flat colours by k-means (scikit-learn's KMeans on
its pixels) and softened by a mild Gaussian blur. SDEdit perturbs the painting to the hijack
time t0 with the forward process, x_t0 = U (alpha(t0) U^T guide + s(guide, t0) z) (for the
edge process the noise is shaped by the painting's own edges), and runs any registered sampler
from there (``x_init``, ``t_start=t0``). Small t0 keeps the painting, t0 = 1 ignores it.
"""
import numpy as np
import torch

from sde_edge.data.datasets import gaussian_blur
from sde_edge.sampling.batched import sample_in_batches

STROKE_BLUR = 0.5  # pixels: "a mild blur"


def default_strokes(channels):
    """The number of colours of a painting: 3 for grey images, 6 for colour ones."""
    return 3 if channels == 1 else 6


def quantize_colours(images, k, seed=0):
    """Each image (N, C, H, W) with its pixels replaced by the nearest of its own k k-means
    colours: exactly k levels per image (fewer only if the image has fewer distinct colours)."""
    from sklearn.cluster import KMeans  # costly to import: only when used

    quantized = torch.empty_like(images)
    for i, image in enumerate(images):
        pixels = image.reshape(image.shape[0], -1).T.double().numpy()
        clusters = min(k, len(np.unique(pixels, axis=0)))
        kmeans = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit(pixels)
        quantized[i] = torch.from_numpy(kmeans.cluster_centers_[kmeans.labels_].T.reshape(image.shape)).to(images)
    return quantized


def stroke_paintings(images, k, blur_sigma=STROKE_BLUR, seed=0):
    """Stroke paintings of images in [-1, 1]: k-means colours, then a mild blur."""
    return gaussian_blur(quantize_colours(images, k, seed), blur_sigma).clamp(-1, 1)


def sdedit(model, sde, guides, *, t0=0.5, sampler="ddpm", steps=100, seed=0, batch_size=256, device="cpu",
           progress=True, encode=None, decode=None, **options):
    """Samples guided by ``guides`` (pixels in [-1, 1]): perturb to t0, then sample back to t = 0. A
    latent run passes its first stage's ``encode`` and ``decode``: the guides are encoded, hijacked
    at t0 in latent space and the results decoded."""
    if not 0.0 < t0 <= 1.0:
        raise ValueError(f"--t0 must lie in (0, 1], got {t0!r}")
    if encode is not None:
        guides = encode(guides).cpu()
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(guides.shape, generator=generator, dtype=guides.dtype)
    x_t0 = torch.cat([sde.perturb(chunk, t0, noise) for chunk, noise in zip(guides.split(512), z.split(512))])
    return sample_in_batches(
        sampler,
        model,
        sde,
        tuple(guides.shape),
        steps=steps,
        seed=seed + 1,
        batch_size=batch_size,
        device=device,
        x_init=x_t0,
        t_start=t0,
        progress=progress,
        decode=decode,
        **options,
    )
