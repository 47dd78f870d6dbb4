"""sde_edge.oracle.MixtureOracle against an independent mixture density (paper_appendix/math.md, section 7)."""
import math

import pytest
import torch

from helpers import edge_rich_images
from sde_edge.oracle import MixtureOracle
from sde_edge.score import Denoiser

WEIGHTS = (0.5, 0.3, 0.2)


def _mixture_log_prob(x, t, images, weights, sde):
    """log p_t(x) written out from marginal_prob of each image alone, with torch.distributions."""
    per_component = []
    for mu, w in zip(images, weights):
        mean, std = sde.marginal_prob(mu[None].expand_as(x), t)
        normal = torch.distributions.Normal(mean, std)
        per_component.append(math.log(w) + normal.log_prob(x).flatten(1).sum(1))
    return torch.logsumexp(torch.stack(per_component, 1), 1)


@pytest.mark.parametrize("variant", ["matched", "direct"])
def test_score_is_gradient_of_mixture_log_density(make_sde, variant):
    sde = make_sde(tau="linear_ramp", variant=variant)
    images = edge_rich_images(3)
    oracle = MixtureOracle(images, WEIGHTS, sde)
    generator = torch.Generator().manual_seed(0)
    for t in (0.02, 0.3, 0.6, 1.0):
        x = oracle.sample_marginal(t, 16, generator=generator)
        x = (x + 0.3 * torch.randn(x.shape, generator=generator, dtype=x.dtype)).requires_grad_(True)
        (reference,) = torch.autograd.grad(_mixture_log_prob(x, t, images, WEIGHTS, sde).sum(), x)
        torch.testing.assert_close(oracle.score(x.detach(), t), reference, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            oracle.log_prob(x.detach(), t), _mixture_log_prob(x.detach(), t, images, WEIGHTS, sde)
        )


@pytest.mark.parametrize("parameterization", ["scaled_eps", "x0"])
def test_denoised_estimate_goes_to_the_component_as_t_goes_to_zero(make_sde, parameterization):
    sde = make_sde(tau="linear_ramp")
    images = edge_rich_images(3)
    oracle = MixtureOracle(images, WEIGHTS, sde, parameterization=parameterization)
    errors = []
    for t in (0.2, 0.05, 1e-3):
        x, k = oracle.sample_marginal(t, 64, generator=torch.Generator().manual_seed(1), return_components=True)
        errors.append((Denoiser(oracle, sde)(x, t).image - images[k]).abs().max().item())
    assert errors[-1] < 1e-6
    assert errors == sorted(errors, reverse=True)


def test_oracle_output_matches_its_parameterisation(make_sde):
    sde = make_sde(tau="cosine")
    images = edge_rich_images(2)
    eps_oracle = MixtureOracle(images, (0.6, 0.4), sde, "scaled_eps")
    x0_oracle = MixtureOracle(images, (0.6, 0.4), sde, "x0")
    x = eps_oracle.sample_marginal(0.4, 8, generator=torch.Generator().manual_seed(2))
    a = sde.schedule.signal(torch.tensor(0.4, dtype=x.dtype))
    torch.testing.assert_close(
        eps_oracle(x, torch.full((8,), 0.4, dtype=x.dtype)), x - a * x0_oracle(x, torch.full((8,), 0.4, dtype=x.dtype))
    )
    torch.testing.assert_close(Denoiser(eps_oracle, sde)(x, 0.4).x0, Denoiser(x0_oracle, sde)(x, 0.4).x0)


@pytest.mark.parametrize("t", [0.05, 0.5, 1.0])
def test_sample_marginal_has_the_mixture_moments(make_sde, t):
    sde = make_sde(tau="linear_ramp")
    images = edge_rich_images(3)
    oracle = MixtureOracle(images, WEIGHTS, sde)
    n = 200_000
    x = oracle.sample_marginal(t, n, generator=torch.Generator().manual_seed(3))
    w = torch.tensor(WEIGHTS, dtype=images.dtype)[:, None, None, None]
    means, stds = sde.marginal_prob(images, t)
    mean = (w * means).sum(0)
    second = (w * (stds**2 + means**2)).sum(0)
    variance = second - mean**2
    assert ((x.mean(0) - mean).abs() / variance.sqrt()).max() < 5 / math.sqrt(n)
    assert ((x.var(0) / variance) - 1).abs().max() < 0.02


def test_float32_is_stable_and_agrees_with_float64(make_sde):
    sde = make_sde(tau="linear_ramp")
    images = edge_rich_images(3)
    oracle64 = MixtureOracle(images, WEIGHTS, sde)
    oracle32 = MixtureOracle(images.float(), WEIGHTS, sde)
    for t in (1e-3, 0.1, 0.9):
        x = oracle64.sample_marginal(t, 32, generator=torch.Generator().manual_seed(4))
        x0_64 = oracle64.posterior_mean(x, t)
        x0_32 = oracle32.posterior_mean(x.float(), t)
        assert torch.isfinite(x0_32).all()
        torch.testing.assert_close(x0_32.double(), x0_64, atol=1e-4, rtol=0)


def test_bad_weights_are_refused(make_sde):
    with pytest.raises(ValueError, match="weights"):
        MixtureOracle(edge_rich_images(3), (0.5, 0.5), make_sde())
