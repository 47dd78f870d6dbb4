"""How the samplers relate to each other: two samplers that must take the same steps do, step by step,
and the few-step solvers converge at their order (the exact Gaussian flow map of paper_appendix/math.md, 5.3)."""
import numpy as np
import pytest
import torch

from helpers import edge_rich_images
from sde_edge.oracle import GaussianOracle, MixtureOracle
from sde_edge.sampling import sample

WEIGHTS = (0.5, 0.3, 0.2)


def test_ddim_with_eta_one_is_ancestral_ddpm(make_sde):
    """Two algebraically different update formulas: equal step by step under the same noise."""
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(3, dtype=torch.float64), WEIGHTS, sde)
    x = oracle.sample_marginal(1.0, 64, generator=torch.Generator().manual_seed(0))
    runs = [
        sample(
            name,
            oracle,
            sde,
            x.shape,
            steps=30,
            x_init=x,
            generator=torch.Generator().manual_seed(1),
            return_trajectory=True,
            **options,
        ).trajectory
        for name, options in [("ddpm", {}), ("ddim", {"eta": 1.0})]
    ]
    for (t_a, x_a), (t_b, x_b) in zip(*runs):
        assert t_a == t_b
        torch.testing.assert_close(x_a, x_b, atol=1e-8, rtol=1e-6)


def test_edm_without_churn_is_heun(make_sde):
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(3, dtype=torch.float64), WEIGHTS, sde)
    x = oracle.sample_marginal(1.0, 16, generator=torch.Generator().manual_seed(3))
    for grid in ("uniform", "edm"):
        heun = sample("heun", oracle, sde, x.shape, steps=15, x_init=x, grid=grid)
        edm = sample("edm", oracle, sde, x.shape, steps=15, x_init=x, grid=grid, s_churn=0.0,
                     generator=torch.Generator().manual_seed(4))
        assert torch.equal(heun.samples, edm.samples) and heun.nfe == edm.nfe


def test_dpmpp_3m_is_third_order_dpmpp_2m_second_and_ddim_first(make_sde):
    """Gaussian data N(m, s^2) under the isotropic process: the probability-flow ODE maps x_1 to
    x_t = a_t m + r_t (x_1 - a_1 m) / r_1 exactly, r_t = sqrt(a_t^2 s^2 + b_t^2) (paper_appendix/math.md, 5.3).
    On the log-SNR grid the state at the last grid time before t = 0 (where both return x0_hat)
    is off the exact map by O(K^-3) for dpmpp_3m, O(K^-2) for dpmpp_2m and O(K^-1) for ddim."""
    sde = make_sde(tau="isotropic")
    oracle = GaussianOracle(0.1, 0.3, sde, "x0")
    x1 = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)

    def error(name, steps):
        reports = []
        sample(name, oracle, sde, x1.shape, steps=steps, x_init=x1, grid="logsnr", callback=reports.append)
        t = torch.tensor(reports[-1]["t"], dtype=torch.float64)
        exact = sde.schedule.signal(t) * 0.1 + oracle.marginal_std(t, x1) / oracle.marginal_std(one, x1) * (
            x1 - sde.schedule.signal(one) * 0.1)
        return (reports[-1]["x"] - exact).abs().max().item()

    slopes = {}
    for name in ("dpmpp_3m", "dpmpp_2m", "ddim"):
        errors = [error(name, k) for k in (20, 40, 80)]
        slopes[name] = -np.polyfit(np.log([20, 40, 80]), np.log(errors), 1)[0]
    assert slopes["dpmpp_3m"] >= 2.6, slopes
    assert slopes["dpmpp_2m"] >= 1.8, slopes
    assert 0.7 < slopes["ddim"] < 1.3, slopes


@pytest.mark.parametrize("tau", ["linear", "linear_ramp"])
def test_dpmpp_2m_sde_without_noise_is_dpmpp_2m(make_sde, tau):
    """eta = 0 draws no noise and takes DPM-Solver++(2M)'s steps, the jump's restart included
    (two implementations: the SDE solver's general form and dpmpp_2m's own)."""
    sde = make_sde(tau=tau)
    oracle = MixtureOracle(edge_rich_images(3), WEIGHTS, sde)
    x1 = oracle.sample_marginal(1.0, 16, generator=torch.Generator().manual_seed(3))
    plain = sample("dpmpp_2m", oracle, sde, x1.shape, steps=15, x_init=x1)
    noiseless = sample("dpmpp_2m_sde", oracle, sde, x1.shape, steps=15, x_init=x1, eta=0.0,
                       generator=torch.Generator().manual_seed(9))
    assert torch.allclose(plain.samples, noiseless.samples, rtol=0, atol=1e-12)
    assert plain.nfe == noiseless.nfe == 15
    noisy = sample(
        "dpmpp_2m_sde", oracle, sde, x1.shape, steps=15, x_init=x1, generator=torch.Generator().manual_seed(9)
    )
    assert not torch.allclose(plain.samples, noisy.samples, atol=1e-3)
