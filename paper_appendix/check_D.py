"""Numerical checks of the claims in D_bound.md. Exits non-zero if any fails.

    python paper_appendix/check_D.py
"""
import sys

import numpy as np
import torch
from _report import report  # paper_appendix/ is on sys.path when run as a script

from sde_edge.config import default_diffusion
from sde_edge.likelihood import LEVELS, decoder_log_likelihood, gaussian_kl
from sde_edge.processes.edge import EdgePreservingSDE
from sde_edge.processes.schedules import TRANSITIONS

torch.set_default_dtype(torch.float64)
EDGES = torch.tensor([0.0, 1e-3, 0.05, 1.0]).reshape(1, 1, 1, -1)
GRID = torch.linspace(0.0, 1.0, 501)


def claim_1_chain_has_the_marginals(sde):
    """v_ts >= 0 on a fine grid, and a_ts^2 sigma_s^2 + v_ts = sigma_t^2."""
    s, t = GRID[1:-1].reshape(-1, 1, 1, 1), GRID[2:].reshape(-1, 1, 1, 1)
    a_ts = sde.schedule.signal(t) / sde.schedule.signal(s)
    var_s, var_t = sde.noise_std(EDGES, s, EDGES) ** 2, sde.noise_std(EDGES, t, EDGES) ** 2
    v_ts = var_t - a_ts**2 * var_s
    return max(float((-v_ts).clamp_min(0).max()), float((a_ts**2 * var_s + v_ts - var_t).abs().max())), 1e-15


def claim_2_posterior_by_quadrature(sde):
    """sde.posterior against Bayes' rule integrated on a fine grid of x_s."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(20):
        t, s = sorted(rng.uniform(0.02, 1.0, 2))[::-1]
        e = float(rng.choice(EDGES.flatten().numpy()))
        x0 = float(rng.uniform(-1, 1))
        e_t, tt, st = torch.tensor(e).reshape(1, 1, 1, 1), torch.tensor(t), torch.tensor(s)
        a_t, a_s = float(sde.schedule.signal(tt)), float(sde.schedule.signal(st))
        var_t, var_s = float(sde.noise_std(e_t, tt, e_t) ** 2), float(sde.noise_std(e_t, st, e_t) ** 2)
        x_t = a_t * x0 + np.sqrt(var_t) * rng.normal()
        grid = np.linspace(a_s * x0 - 12 * np.sqrt(var_s), a_s * x0 + 12 * np.sqrt(var_s), 200_001)
        v_ts = var_t - (a_t / a_s) ** 2 * var_s
        log_density = -0.5 * (x_t - a_t / a_s * grid) ** 2 / v_ts - 0.5 * (grid - a_s * x0) ** 2 / var_s
        weights = np.exp(log_density - log_density.max())
        mean = (weights * grid).sum() / weights.sum()
        var = (weights * (grid - mean) ** 2).sum() / weights.sum()
        lib_mean, lib_var = sde.posterior(
            torch.tensor(x_t).reshape(1, 1, 1, 1), torch.tensor(x0).reshape(1, 1, 1, 1), tt, st, e_t
        )
        worst = max(worst, abs(float(lib_mean) - mean) / np.sqrt(var), abs(float(lib_var) / var - 1))
    return worst, 1e-6


def claim_3_kl_formula_by_monte_carlo():
    rng = np.random.default_rng(1)
    m_q, v_q, m_p, v_p = 0.3, 0.04, 0.1, 0.09
    x = rng.normal(m_q, np.sqrt(v_q), 2_000_000)
    log_ratio = -0.5 * np.log(v_q) - 0.5 * (x - m_q) ** 2 / v_q + 0.5 * np.log(v_p) + 0.5 * (x - m_p) ** 2 / v_p
    exact = float(gaussian_kl(torch.tensor(m_q), torch.tensor(v_q), torch.tensor(m_p), torch.tensor(v_p)))
    return abs(log_ratio.mean() - exact) / (log_ratio.std() / np.sqrt(len(x))), 4.0  # in standard errors


def claim_4_per_pixel_loss_scale(sde):
    """With matching variances, KL = a_s^2 var / (2 sigma_s^4) (x0 - x0_hat)^2 per pixel."""
    t, s = torch.tensor(0.3), torch.tensor(0.25)
    x0 = torch.rand(1, 1, 1, EDGES.shape[-1]) * 2 - 1
    x0_hat = x0 + 0.1
    x_t = sde.schedule.signal(t) * x0 + sde.noise_std(EDGES, t, EDGES) * torch.randn_like(x0)
    mean_q, var = sde.posterior(x_t, x0, t, s, EDGES)
    mean_p, _ = sde.posterior(x_t, x0_hat, t, s, EDGES)
    weight = sde.schedule.signal(s) ** 2 * var / (2 * sde.noise_std(EDGES, s, EDGES) ** 4)
    kl = gaussian_kl(mean_q, var, mean_p, var)
    spread = float(weight.max() / weight.min())
    error = float((kl / (weight * (x0 - x0_hat) ** 2) - 1).abs().max())
    return error if spread > 10 else float("inf"), 1e-9  # the weights must really differ across pixels


def claim_5_decoder_is_a_distribution():
    levels = torch.arange(LEVELS, dtype=torch.float64)
    lattice = levels * 2 / (LEVELS - 1) - 1
    worst = 0.0
    for mean, std in [(0.0, 0.01), (0.98, 0.003), (-1.0, 0.2), (0.37, 1e-4)]:
        mass = (
            decoder_log_likelihood(lattice, torch.full_like(lattice, mean), torch.full_like(lattice, std)).exp().sum()
        )
        worst = max(worst, abs(float(mass) - 1))
    return worst, 1e-12


def main():
    results = []
    for tau in [name for name in TRANSITIONS]:
        sde = EdgePreservingSDE(default_diffusion(tau=tau))
        results.append((f"1 chain marginals, v_ts >= 0 ({tau})", *claim_1_chain_has_the_marginals(sde)))
    sde = EdgePreservingSDE(default_diffusion(tau="linear_ramp"))
    results.append(("2 posterior by quadrature (linear_ramp)", *claim_2_posterior_by_quadrature(sde)))
    results.append(("3 Gaussian KL by Monte Carlo (standard errors)", *claim_3_kl_formula_by_monte_carlo()))
    results.append(("4 per-pixel loss scale (linear_ramp)", *claim_4_per_pixel_loss_scale(sde)))
    results.append(("5 decoder masses sum to one", *claim_5_decoder_is_a_distribution()))
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
