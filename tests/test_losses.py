"""sde_edge.losses: weightings, importance sampling of t, gradients at t_eps (paper_appendix/math.md, section 4)."""
import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import cumulative_trapezoid

from helpers import edge_rich_images
from sde_edge.losses import WEIGHTINGS, ScoreMatchingLoss
from sde_edge.models import ScoreModel, UNet
from sde_edge.oracle import MixtureOracle


class _Perturbed:
    """The oracle's output plus a fixed per-pixel offset scaled by the isotropic noise level."""

    def __init__(self, oracle, offset):
        self.oracle, self.offset, self.parameterization = oracle, offset, oracle.parameterization

    def __call__(self, x, t):
        return self.oracle(x, t) + self.offset * self.oracle.sde.schedule.noise(t)[:, None, None, None]


def _draws(sde, x0, weighting, seed):
    generator = torch.Generator().manual_seed(seed)
    t, importance = ScoreMatchingLoss(sde, weighting).sample_times(len(x0), generator=generator, dtype=x0.dtype)
    return t, importance, torch.randn(x0.shape, generator=generator, dtype=x0.dtype)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("parameterization", ["scaled_eps", "x0"])
def test_exact_posterior_mean_beats_a_perturbed_one(make_sde, weighting, parameterization):
    sde = make_sde(tau="linear_ramp")
    images = edge_rich_images(3)
    oracle = MixtureOracle(images, (0.5, 0.3, 0.2), sde, parameterization)
    x0 = images[torch.multinomial(oracle.weights, 4000, replacement=True, generator=torch.Generator().manual_seed(0))]
    t, importance, eps = _draws(sde, x0, weighting, seed=1)
    offset = 0.1 * torch.randn(images[0].shape, generator=torch.Generator().manual_seed(2), dtype=images.dtype)
    loss = ScoreMatchingLoss(sde, weighting)
    exact = loss(oracle, x0, t, eps, importance)
    perturbed = loss(_Perturbed(oracle, offset), x0, t, eps, importance)
    assert exact < perturbed


def test_variance_weighting_is_scaled_noise_error(make_sde):
    sde = make_sde(tau="cosine")
    x0 = edge_rich_images(6)
    t, _, eps = _draws(sde, x0, "variance", seed=3)
    model = ScoreModel(lambda x, t: 0.3 * x, "scaled_eps")
    _, std = sde.marginal_prob(x0, t)
    x_t = sde.schedule.signal(t[:, None, None, None]) * x0 + std * eps
    expected = (model(x_t, t) / std - eps).square()
    torch.testing.assert_close(ScoreMatchingLoss(sde, "variance").per_pixel(model, x0, t, eps), expected)


def test_likelihood_importance_sampling_matches_uniform_time(make_sde):
    sde = make_sde(tau="linear_ramp")
    images = edge_rich_images(3)
    oracle = MixtureOracle(images, (0.5, 0.3, 0.2), sde)
    model = _Perturbed(
        oracle, 0.05 * torch.randn(images[0].shape, generator=torch.Generator().manual_seed(4), dtype=images.dtype)
    )
    n = 40_000
    x0 = images[torch.multinomial(oracle.weights, n, replacement=True, generator=torch.Generator().manual_seed(5))]
    estimates = []
    for weighting_of_t in ("likelihood", "paper"):  # "paper" draws t uniformly with unit weights
        t, importance, eps = _draws(sde, x0, weighting_of_t, seed=6)
        per_sample = ScoreMatchingLoss(sde, "likelihood").per_pixel(model, x0, t, eps, importance).flatten(1).sum(1)
        estimates.append((per_sample.mean().item(), per_sample.std().item() / n**0.5))
    (is_mean, is_se), (uniform_mean, uniform_se) = estimates
    assert abs(is_mean - uniform_mean) < 4 * (is_se**2 + uniform_se**2) ** 0.5
    assert is_se < uniform_se, "the proposal should reduce the variance"


def test_likelihood_proposal_has_the_documented_density(make_sde, paper_schedule):
    sde = make_sde(tau="linear_ramp")
    t, _ = ScoreMatchingLoss(sde, "likelihood").sample_times(20_000, generator=torch.Generator().manual_seed(7),
                                                             dtype=torch.float64)
    grid = np.linspace(sde.t_eps, 1.0, 200_001)
    beta, abar = paper_schedule.beta(grid), np.exp(paper_schedule.log_abar(grid))
    cdf = cumulative_trapezoid(beta / (1 - abar), grid, initial=0.0)
    cdf /= cdf[-1]
    assert stats.kstest(t.numpy(), lambda q: np.interp(q, grid, cdf)).pvalue > 1e-3


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("parameterization", ["scaled_eps", "x0"])
def test_gradients_are_finite_at_t_eps(make_sde, weighting, parameterization):
    sde = make_sde(tau="linear_ramp")
    torch.manual_seed(0)
    model = ScoreModel(
        UNet(in_channels=1, image_size=8, nf=8, ch_mult=(1, 2), attn_resolutions=(), num_groups=4), parameterization
    )
    torch.nn.init.normal_(model.net.head[-1].weight, std=0.1)  # a non-trivial output
    x0 = edge_rich_images(4, dtype=torch.float32)
    t = torch.full((4,), sde.t_eps)
    loss = ScoreMatchingLoss(sde, weighting)(model, x0, t, torch.randn(x0.shape))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_discrete_time_sampling_uses_the_paper_grid(make_sde):
    sde = make_sde()
    t, weights = ScoreMatchingLoss(sde, time_sampling="discrete").sample_times(
        5000, generator=torch.Generator().manual_seed(8)
    )
    steps = t * (sde.num_steps - 1)
    torch.testing.assert_close(steps, steps.round(), atol=1e-3, rtol=0)
    assert steps.min() >= 1 and steps.max() <= sde.num_steps - 1
    assert bool((weights == 1).all())


def test_bad_weighting_names_the_field(make_sde):
    with pytest.raises(ValueError, match=r"training\.weighting"):
        ScoreMatchingLoss(make_sde(), "snr")
    with pytest.raises(ValueError, match=r"training\.time_sampling"):
        ScoreMatchingLoss(make_sde(), time_sampling="sometimes")
    with pytest.raises(ValueError, match="linear_ramp"):  # G^2 has a Dirac where sigma jumps
        ScoreMatchingLoss(make_sde(tau="linear"), "likelihood")
