"""sde_edge.processes.edge against independent derivations: Monte Carlo, textbook VP formulas,
a numpy-only worked example of the public code's settings, and quadrature."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from helpers import assert_paths_match_marginal
from sde_edge.config import default_diffusion
from sde_edge.processes.edge import VPSDE
from sde_edge.processes.schedules import TRANSITIONS
from sde_edge.reverse import ReverseProcess
from sde_edge.score import Denoiser

CONTINUOUS_TAUS = [name for name in TRANSITIONS if name != "linear"]


# --- a. Monte Carlo: the forward SDE reproduces its closed-form marginal ---------------------
@pytest.mark.parametrize("variant", ["matched", "direct"])
@pytest.mark.parametrize("tau", ["linear_ramp", "cosine"])
def test_euler_maruyama_paths_match_marginal(make_sde, variant, tau):
    x0 = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert_paths_match_marginal(make_sde(tau=tau, variant=variant), x0)


# --- b. isotropic tau is the textbook VP-SDE ---------------------------------------------------
def test_isotropic_reduces_to_vp_sde(make_sde, paper_schedule):
    sde = make_sde(tau="isotropic")
    p = paper_schedule
    beta_0, beta_1 = p.n * p.beta_min, p.n * p.beta_max  # score_sde's continuous betas: N * beta_min, N * beta_max
    x0 = torch.rand(5, 3, 6, 6, dtype=torch.float64) * 2 - 1
    x = torch.randn_like(x0)
    t = torch.tensor([1e-3, 0.1, 0.37, 0.8, 1.0], dtype=torch.float64)
    tb = t[:, None, None, None]
    log_mean_coeff = -0.25 * tb**2 * (beta_1 - beta_0) - 0.5 * tb * beta_0
    beta_t = beta_0 + tb * (beta_1 - beta_0)
    mean, std = sde.marginal_prob(x0, t)
    torch.testing.assert_close(mean, torch.exp(log_mean_coeff) * x0, atol=1e-6, rtol=0)
    torch.testing.assert_close(std, torch.sqrt(1 - torch.exp(2 * log_mean_coeff)).expand_as(x0), atol=1e-6, rtol=0)
    drift, diffusion = sde.sde(x, t, x0)
    torch.testing.assert_close(drift, -0.5 * beta_t * x, atol=1e-6, rtol=0)
    torch.testing.assert_close(diffusion, torch.sqrt(beta_t).expand_as(x), atol=1e-6, rtol=0)

    vp = VPSDE(default_diffusion(tau="linear_ramp"))
    for got, want in zip(vp.marginal_prob(x0, t) + vp.sde(x, t, x0), sde.marginal_prob(x0, t) + sde.sde(x, t, x0)):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


# --- c. G^2 >= 0, and tau = linear is refused in continuous time --------------------------------
@pytest.mark.parametrize("tau", CONTINUOUS_TAUS)
@pytest.mark.parametrize("kappa_schedule", ["linear", "constant"])
def test_diffusion_squared_is_non_negative(make_sde, tau, kappa_schedule):
    sde = make_sde(tau=tau, kappa_schedule=kappa_schedule)
    e = torch.cat([torch.zeros(1), torch.logspace(-6, 0, 63)]).to(torch.float64).reshape(1, 1, 1, -1)
    t = torch.linspace(0, 1, 200, dtype=torch.float64).reshape(-1, 1, 1, 1)
    assert bool((sde.diffusion_sq(e, t, e) >= 0).all())


def test_matched_g_squared_is_d_sigma_squared_plus_beta_sigma_squared(make_sde):
    """The analytic G^2 against autograd of sigma^2 (an independent route to d sigma^2/dt)."""
    e = torch.tensor([0.0, 1e-4, 1e-2, 0.3, 1.0], dtype=torch.float64).reshape(1, 1, 1, -1)
    t = torch.linspace(0.01, 0.99, 41, dtype=torch.float64).reshape(-1, 1, 1, 1)
    t_each = t.expand(-1, 1, 1, e.shape[-1]).clone().requires_grad_(True)  # one time per (t, e) pair
    for tau in CONTINUOUS_TAUS:
        sde = make_sde(tau=tau)
        variance = sde.noise_std(e, t_each, e) ** 2
        (rate,) = torch.autograd.grad(variance.sum(), t_each)
        expected = rate + sde.schedule.beta(t_each.detach()) * variance.detach()
        torch.testing.assert_close(sde.diffusion_sq(e, t, e), expected, rtol=1e-9, atol=1e-12)


def test_linear_tau_refused_in_continuous_time(make_sde):
    sde = make_sde(tau="linear")
    x = torch.zeros(2, 1, 4, 4)
    sde.marginal_prob(x, 0.3)  # the discrete marginal itself is fine
    with pytest.raises(ValueError, match="linear_ramp"):
        sde.sde(x, 0.3, x)
    with pytest.raises(ValueError, match="linear_ramp"):
        ReverseProcess(Denoiser(_Identity(), sde))


class _Identity:
    parameterization = "scaled_eps"

    def __call__(self, x, t):
        return x


# --- d. the public code's settings, worked out in numpy alone ------------------------------------
def _numpy_worked_example(images, t, schedule):
    sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
    sobel_y = sobel_x.T
    magnitudes = []
    for image in images:
        gray = image.sum(axis=0)
        padded = np.zeros((gray.shape[0] + 2, gray.shape[1] + 2))
        padded[1:-1, 1:-1] = gray
        gx = np.zeros_like(gray)
        gy = np.zeros_like(gray)
        for i in range(gray.shape[0]):
            for j in range(gray.shape[1]):
                window = padded[i : i + 3, j : j + 3]
                gx[i, j] = (window * sobel_x).sum()
                gy[i, j] = (window * sobel_y).sum()
        magnitudes.append(gx**2 + gy**2)
    magnitudes = np.stack(magnitudes)
    edges = magnitudes / (magnitudes.max() + 1e-12)  # batch-wide max, as in the public code
    t_phi = 0.5
    abar = math.exp(schedule.log_abar(t))
    tau = t if t < t_phi else 1.0
    kappa = 1e-4 + (1e-1 - 1e-4) * t / t_phi
    c = 1.0 / ((1 - tau) * np.sqrt(1 + edges / kappa) + tau)
    return edges, c, math.sqrt(1 - abar) * c


def test_public_code_settings_worked_example(make_sde, paper_schedule):
    rng = np.random.default_rng(7)
    images = np.stack([rng.uniform(-1, 1, (1, 5, 5)), np.where(np.arange(5) < 2, -1.0, 0.8) * np.ones((1, 5, 5))])
    sde = make_sde(tau="linear", edge_norm="batch", edge_padding="zeros")
    x0 = torch.tensor(images, dtype=torch.float64)
    for t in (0.1, 0.3, 0.6):
        edges, c, sigma = _numpy_worked_example(images, t, paper_schedule)
        tb = torch.full((2, 1, 1, 1), t, dtype=torch.float64)
        e_lib = sde.edge_map(x0)
        np.testing.assert_allclose(e_lib[:, 0].numpy(), edges, atol=1e-6, rtol=0)
        np.testing.assert_allclose(sde.edge_factor(e_lib, tb)[:, 0].numpy(), c, atol=1e-6, rtol=0)
        np.testing.assert_allclose(sde.marginal_prob(x0, t)[1][:, 0].numpy(), sigma, atol=1e-6, rtol=0)
        assert sde.tau_fn(torch.tensor(t)) == pytest.approx(t if t < 0.5 else 1.0)


# --- f. the direct variant's tabulated variance against quadrature ------------------------------
def _direct_variance_by_quadrature(e, t, tau_name, schedule, t_phi=0.5):
    def log_abar(s):
        return float(schedule.log_abar(s))

    def tau(s):
        return {
            "linear_ramp": min(s / t_phi, 1.0),
            "cosine": 0.5 * (1 - math.cos(math.pi * s)),
            "linear": s if s < t_phi else 1.0,
        }[tau_name]

    def integrand(s):
        kappa = 1e-4 + (1e-1 - 1e-4) * s / t_phi
        c = 1.0 / ((1 - tau(s)) * math.sqrt(1 + e / kappa) + tau(s))
        return math.exp(log_abar(t) - log_abar(s)) * float(schedule.beta(s)) * c**2

    breakpoints = [p for p in (1e-5, 1e-4, 1e-3, 1e-2, t_phi) if p < t]
    return quad(integrand, 0, t, points=breakpoints or None, limit=400, epsabs=0, epsrel=1e-11)[0]


@pytest.mark.parametrize("tau", ["linear_ramp", "cosine", "linear"])
def test_direct_variance_table_matches_quadrature(make_sde, tau, paper_schedule):
    sde = make_sde(tau=tau, variant="direct")
    rng = np.random.default_rng(11)
    edges = np.concatenate(
        [[0.0, 1e-5, 1e-4, 1e-3, 0.02, 0.5, 1.0], rng.uniform(0, 1, 4), 10 ** rng.uniform(-5, -1, 4)]
    )
    times = np.concatenate(
        [[1e-3, 0.01, 0.2, 0.4999, 0.5, 0.5004, 0.8, 1.0], rng.uniform(1e-3, 1, 4), 10 ** rng.uniform(-3, -1, 3)]
    )
    e = torch.tensor(edges, dtype=torch.float32).reshape(1, 1, 1, -1)
    t = torch.tensor(times, dtype=torch.float32).reshape(-1, 1, 1, 1)
    table = (sde.noise_std(e, t, e) ** 2).double().numpy().reshape(len(times), len(edges))
    reference = np.array(
        [
            [_direct_variance_by_quadrature(ei, float(np.float32(ti)), tau, paper_schedule) for ei in edges]
            for ti in times
        ]
    )
    relative = np.abs(table / reference - 1)
    assert relative.max() <= 1e-4, f"worst relative error {relative.max():.2e}"


def test_direct_variant_is_plain_vp_without_edges(make_sde):
    sde = make_sde(tau="linear_ramp", variant="direct")
    x0 = torch.full((2, 1, 6, 6), 0.3)  # flat: e = 0, so c = 1 and v = 1 - abar
    t = torch.tensor([0.05, 0.7])
    _, std = sde.marginal_prob(x0, t)
    torch.testing.assert_close(std, sde.schedule.noise(t)[:, None, None, None].expand_as(x0), rtol=1e-5, atol=0)


# --- contract details -------------------------------------------------------------------------
def test_std_and_diffusion_are_per_pixel_and_shaped_like_x(make_sde):
    sde = make_sde(tau="linear_ramp")
    x0 = torch.rand(3, 3, 7, 5) * 2 - 1
    mean, std = sde.marginal_prob(x0, torch.tensor([0.1, 0.2, 0.3]))
    drift, diffusion = sde.sde(x0, 0.2, x0)
    for tensor in (mean, std, drift, diffusion):
        assert tensor.shape == x0.shape
    assert std[0].std() > 0, "std must vary across pixels of an image with edges"


def test_prior(make_sde):
    sde = make_sde()
    z = sde.prior_sampling((4000, 1, 2, 2), generator=torch.Generator().manual_seed(0))
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1)
    torch.testing.assert_close(sde.prior_logp(z), expected)


def test_bad_time_shape_is_a_clear_error(make_sde):
    sde = make_sde()
    with pytest.raises(ValueError, match="t must be"):
        sde.marginal_prob(torch.zeros(3, 1, 4, 4), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        sde.marginal_prob(torch.zeros(4, 4), 0.5)
