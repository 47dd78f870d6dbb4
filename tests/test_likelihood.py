"""sde_edge.likelihood against closed forms: Gaussian data, the one-image oracle (paper_appendix/math.md, section 6)."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from helpers import edge_rich_images
from sde_edge.likelihood import BIN_WIDTH, ode_bpd, quantize, vlb_bpd
from sde_edge.odeint import SolverBudgetExceeded
from sde_edge.oracle import GaussianOracle, MixtureOracle

MU, S = 0.1, 0.3


def _gaussian_data(n, seed, shape=(1, 4, 4)):
    generator = torch.Generator().manual_seed(seed)
    return (MU + S * torch.randn(n, *shape, generator=generator, dtype=torch.float64)).clamp(-1, 1)


def _flow_map_bpd(sde, oracle, x):
    """Closed-form ODE-model bpd for Gaussian data: the flow is the affine map
    x_1 = a_1 mu + r_1 (x - a_eps mu) / r_eps (r_t the marginal std), pushed back from N(0, I)."""
    t_eps, one = torch.tensor(sde.t_eps, dtype=x.dtype), torch.tensor(1.0, dtype=x.dtype)
    a0, r0, a1, r1 = (
        sde.schedule.signal(t_eps),
        oracle.marginal_std(t_eps, x),
        sde.schedule.signal(one),
        oracle.marginal_std(one, x),
    )
    z = a1 * MU + r1 * (x - a0 * MU) / r0
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi) + torch.log(r1 / r0)).flatten(1).sum(1)
    return -log_p / (x[0].numel() * math.log(2)) + 7


def test_ode_bpd_exact_trace_matches_the_gaussian_closed_form(make_sde):
    sde = make_sde(tau="isotropic")
    oracle = GaussianOracle(MU, S, sde)
    x = _gaussian_data(6, seed=0)
    with pytest.warns(UserWarning, match="dequantize=False"):
        result = ode_bpd(oracle, sde, x, trace="exact", dequantize=False, rtol=1e-7, atol=1e-7)
    assert (result.bpd - _flow_map_bpd(sde, oracle, x)).abs().max() < 0.01
    # and the model is close to the data density itself: only t_eps and abar(1) = 0.0066 separate them
    data_bpd = -torch.distributions.Normal(MU, S).log_prob(x).flatten(1).sum(1) / (16 * math.log(2)) + 7
    assert (result.bpd - data_bpd).abs().max() < 0.02


def test_hutchinson_agrees_with_the_exact_trace(make_sde):
    """On a two-image mixture, whose flow has a non-diagonal Jacobian; each copy of x draws its own probe."""
    sde = make_sde(tau="isotropic")
    oracle = MixtureOracle(edge_rich_images(2, size=4), (0.6, 0.4), sde)
    x = oracle.sample_marginal(0.02, 2, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    exact = ode_bpd(oracle, sde, x, trace="exact", dequantize=False, rtol=1e-6, atol=1e-6).bpd
    copies = 48
    for probe in ("gaussian", "rademacher"):
        estimates = ode_bpd(
            oracle,
            sde,
            x.repeat_interleave(copies, 0),
            trace="hutchinson",
            probe=probe,
            dequantize=False,
            generator=torch.Generator().manual_seed(2),
            rtol=1e-6,
            atol=1e-6,
        ).bpd.reshape(2, copies)
        mean, standard_error = estimates.mean(1), estimates.std(1) / copies**0.5
        assert ((mean - exact).abs() <= 3 * standard_error + 1e-4).all(), (probe, mean, exact, standard_error)
        assert (estimates.std(1) > 0).all(), "a probe that never varies tests nothing"


def _discrete_nll_bpd(x):
    """-log2 P(bin of each pixel) / D under the true N(MU, S^2), the data's own distribution."""
    k = quantize(x).numpy()
    low = np.where(k > 0, k * BIN_WIDTH - 1, -np.inf)
    high = np.where(k < 255, (k + 1) * BIN_WIDTH - 1, np.inf)
    mass = norm.cdf((high - MU) / S) - norm.cdf((low - MU) / S)
    return torch.from_numpy(-np.log(mass).reshape(len(x), -1).sum(1) / (x[0].numel() * math.log(2)))


class _DiscreteGaussianOracle:
    """The exact model of Gaussian data quantised to the 256 bins (isotropic process, pixels
    independent): E[x0 | x_t] is a posterior average over the 256 levels of each pixel."""

    parameterization = "x0"

    def __init__(self, sde):
        k = np.arange(256)
        low, high = np.where(k > 0, k * BIN_WIDTH - 1, -np.inf), np.where(k < 255, (k + 1) * BIN_WIDTH - 1, np.inf)
        self.sde = sde
        self.log_mass = torch.from_numpy(np.log(norm.cdf((high - MU) / S) - norm.cdf((low - MU) / S)))
        self.levels = torch.from_numpy(k * 2 / 255 - 1.0)

    def __call__(self, x, t):
        t = t[:, None, None, None, None]
        a, b = self.sde.schedule.signal(t), self.sde.schedule.noise(t)
        logits = self.log_mass - 0.5 * ((x[..., None] - a * self.levels) / b) ** 2
        return (logits.softmax(-1) * self.levels).sum(-1)


def test_bound_is_above_the_discrete_nll_and_tightens_with_steps(make_sde):
    """With the exact model of the quantised data, the bound lies above the true discrete NLL and
    closes on it as steps grow (log-SNR grid: the bins are resolved only at tiny t)."""
    sde = make_sde(tau="isotropic")
    x = quantize(_gaussian_data(300, seed=3)) * 2 / 255 - 1
    truth = _discrete_nll_bpd(x)
    model = _DiscreteGaussianOracle(sde)
    bounds = {steps: vlb_bpd(model, sde, x, steps=steps, grid="logsnr", generator=torch.Generator().manual_seed(4)).bpd
              for steps in (50, 200, 800)}
    for steps, bound in bounds.items():
        gap = bound - truth
        assert gap.mean() > -3 * gap.std() / len(x) ** 0.5, f"{steps} steps: bound below the NLL"
    for fewer, more in ((50, 200), (200, 800)):
        improvement = bounds[fewer] - bounds[more]  # paired: the same data
        assert improvement.mean() > 3 * improvement.std() / len(x) ** 0.5, f"{more} steps do not tighten the bound"
    assert (bounds[800] - truth).mean() < 0.15


def test_one_image_oracle_has_zero_kl_and_a_hand_computed_bound(make_sde):
    sde = make_sde(tau="linear")  # the paper's jump: fine for the discrete bound
    mu = quantize(edge_rich_images(1)) * 2 / 255 - 1
    oracle = MixtureOracle(mu, [1.0], sde)
    result = vlb_bpd(oracle, sde, mu.repeat(3, 1, 1, 1), steps=40, generator=torch.Generator().manual_seed(5))
    assert result.terms["kl_per_step"].abs().max() < 1e-6
    dims = mu[0].numel()
    one, t1 = torch.tensor(1.0, dtype=mu.dtype), result.times[-2]
    _, std_1 = sde.marginal_prob(mu, one)
    a_1 = sde.schedule.signal(one)
    prior = 0.5 * (std_1**2 + a_1**2 * mu**2 - 1 - torch.log(std_1**2)).sum()
    _, std_t1 = sde.marginal_prob(mu, t1)
    decoder_std = (std_t1 / sde.schedule.signal(t1)).numpy()
    k = quantize(mu).numpy()
    low = np.where(k > 0, k * BIN_WIDTH - 1, -np.inf)
    high = np.where(k < 255, (k + 1) * BIN_WIDTH - 1, np.inf)
    decoder = -np.log(norm.cdf((high - mu.numpy()) / decoder_std) - norm.cdf((low - mu.numpy()) / decoder_std)).sum()
    expected = (float(prior) + decoder) / (dims * math.log(2))
    torch.testing.assert_close(result.bpd, torch.full((3,), expected, dtype=torch.float64), atol=1e-6, rtol=0)


def test_exact_trace_is_refused_for_large_images(make_sde):
    sde = make_sde(tau="isotropic")
    with pytest.raises(ValueError, match="hutchinson"):
        ode_bpd(GaussianOracle(MU, S, sde), sde, torch.zeros(1, 1, 33, 32), trace="exact")


def test_bad_inputs_are_clear_errors(make_sde):
    sde = make_sde(tau="isotropic")
    oracle = GaussianOracle(MU, S, sde)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ode_bpd(oracle, sde, torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        vlb_bpd(oracle, sde, torch.full((1, 1, 4, 4), 3.0), steps=5)
    with pytest.raises(ValueError, match="linear_ramp"):
        ode_bpd(oracle, make_sde(tau="linear"), torch.zeros(1, 1, 4, 4))


def test_adaptive_solver_stops_at_max_nfe(make_sde):
    sde = make_sde(tau="isotropic")
    with pytest.raises(SolverBudgetExceeded, match="max_nfe=5"):
        ode_bpd(GaussianOracle(MU, S, sde), sde, _gaussian_data(2, seed=6), max_nfe=5)
