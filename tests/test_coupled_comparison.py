"""Coupled comparisons (sde_edge/experiments/coupling.py) on the mixture oracle: the reference reads
back exactly the path replayed for it, the path is independent of the prior draws and the same for
every setting, and a coarse sampler on it lands much closer to the reference's samples than on
independent noise, with its law kept."""
import math

import torch

from sde_edge.config import default_diffusion
from sde_edge.experiments.coupling import SharedPath
from sde_edge.experiments.sampler_comparison import mode_statistics
from sde_edge.oracle import MixtureOracle, rectangle_images
from sde_edge.processes import build_sde
from sde_edge.sampling import sample

WEIGHTS = (0.5, 0.3, 0.2)


def _setup(tau="linear", n=512):
    sde = build_sde(default_diffusion(tau=tau))
    images = rectangle_images(3)
    return MixtureOracle(images, WEIGHTS, sde), sde, images, (n, *images.shape[1:])


def test_the_reference_reads_back_exactly_the_replayed_path():
    oracle, sde, _, shape = _setup(n=64)
    coupling = SharedPath(sde, shape, 0, ("ddpm", 100))
    x_init, path = coupling.start()
    points = list(path._points)
    sample("ddpm", oracle, sde, shape, steps=100, x_init=x_init, generator=path)
    assert path._points == points  # no point added: its every step hit one replayed (grid in float32)


def test_the_path_is_the_same_for_every_setting_and_independent_of_the_prior_draws():
    oracle, sde, _, shape = _setup(n=4096)
    coupling = SharedPath(sde, shape, 0, ("ddpm", 100))
    (x_a, path_a), (x_b, path_b) = coupling.start(), coupling.start()
    assert torch.equal(x_a, x_b) and all(torch.equal(a, b) for a, b in zip(path_a._pieces, path_b._pieces))
    y = torch.zeros(shape)
    z = path_a.step_noise(y, 1.0, 0.99)  # the reference's first step: drawn first after the prior
    prior = sde.to_basis(x_a)
    correlation = float((z * prior).mean() / (z.std() * prior.std()))
    assert abs(correlation) < 5 / math.sqrt(z.numel()), correlation


def test_a_coarse_sampler_on_the_path_lands_near_the_reference_samples_and_keeps_its_law():
    oracle, sde, images, shape = _setup(n=512)
    coupling = SharedPath(sde, shape, 0, ("ddpm", 500))
    x_init, path = coupling.start()
    reference = sample("ddpm", oracle, sde, shape, steps=500, x_init=x_init, generator=path).samples
    _, path = coupling.start()
    coupled = sample("dpmpp_2m_sde", oracle, sde, shape, steps=25, x_init=x_init, generator=path).samples
    free = sample("dpmpp_2m_sde", oracle, sde, shape, steps=25, x_init=x_init,
                  generator=torch.Generator().manual_seed(7)).samples
    rmse = [float((s - reference).square().mean().sqrt()) for s in (coupled, free)]
    assert rmse[0] < 0.5 * rmse[1], rmse
    near, _, p_value = mode_statistics(coupled, images, WEIGHTS)
    assert near > 0.95 and p_value > 1e-3, (near, p_value)
