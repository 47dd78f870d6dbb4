"""Numerical checks of the claims in A_sde.md. Exits non-zero if any fails.

    python paper_appendix/check_A.py
"""
import sys

import torch
from _report import report  # paper_appendix/ is on sys.path when run as a script
from scipy.integrate import solve_ivp

from sde_edge.config import default_diffusion
from sde_edge.oracle import MixtureOracle
from sde_edge.processes.edge import EdgePreservingSDE
from sde_edge.processes.schedules import TRANSITIONS
from sde_edge.reverse import ReverseProcess
from sde_edge.score import Denoiser

torch.set_default_dtype(torch.float64)
CONTINUOUS = [name for name in TRANSITIONS if name != "linear"]
EDGES = torch.tensor([0.0, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0]).reshape(1, 1, 1, -1)


def claim_1_matched_g_squared(sde):
    """G^2 = d sigma^2/dt + beta sigma^2, with d sigma^2/dt by central differences."""
    t = torch.linspace(0.02, 0.98, 97).reshape(-1, 1, 1, 1)
    h = 1e-6
    rate = (sde.noise_std(EDGES, t + h, EDGES) ** 2 - sde.noise_std(EDGES, t - h, EDGES) ** 2) / (2 * h)
    expected = rate + sde.schedule.beta(t) * sde.noise_std(EDGES, t, EDGES) ** 2
    # the kink of linear_ramp at t_phi makes a central difference there one-sided-wrong
    away = (t - sde.tau_fn.t_phi).abs() > 2 * h
    error = ((sde.diffusion_sq(EDGES, t, EDGES) - expected).abs() / expected.abs().clamp_min(1e-8))[
        away.expand_as(expected)
    ]
    return error.max().item(), 1e-6


def claim_2_sigma_over_a_non_decreasing(sde):
    """sigma^2 / a^2 is non-decreasing, and G^2 >= beta c^2 > 0."""
    t = torch.linspace(0.0, 1.0, 2001).reshape(-1, 1, 1, 1)
    ratio = sde.noise_std(EDGES, t, EDGES) ** 2 / sde.schedule.signal(t) ** 2
    worst_decrease = (-(ratio[1:] - ratio[:-1])).clamp_min(0).max().item()
    g_sq = sde.diffusion_sq(EDGES, t, EDGES)
    below_floor = (sde.schedule.beta(t) * sde.edge_factor(EDGES, t) ** 2 - g_sq).clamp_min(0).max().item()
    return max(worst_decrease, below_floor), 1e-12


def claim_3_direct_variance(tau):
    """The direct variant's tabulated variance solves v' = -beta v + beta c^2, v(0) = 0."""
    sde = EdgePreservingSDE(default_diffusion(tau=tau, variant="direct"))
    worst = 0.0
    for e in [0.0, 1e-3, 0.05, 1.0]:
        e_t = torch.tensor(e).reshape(1, 1, 1, 1)

        def rhs(s, v, e_t=e_t):
            s_t = torch.tensor(s).reshape(1, 1, 1, 1)
            return [float(sde.schedule.beta(s_t) * (sde.edge_factor(e_t, s_t) ** 2 - v[0]))]

        times = [0.01, 0.2, 0.45, 0.7, 1.0]
        solution = solve_ivp(rhs, (0.0, 1.0), [0.0], t_eval=times, rtol=1e-11, atol=1e-14, method="DOP853")
        table = sde.noise_std(e_t, torch.tensor(times).reshape(-1, 1, 1, 1), e_t).flatten() ** 2
        worst = max(worst, float((table.numpy() / solution.y[0] - 1).__abs__().max()))
    return worst, 1e-4


def claim_4_probability_flow_with_x0_hat(tau):
    """With one data image, the ODE from x_1 = a mu + sigma z passes through a(t) mu + sigma(mu, t) z."""
    sde = EdgePreservingSDE(default_diffusion(tau=tau))
    generator = torch.Generator().manual_seed(0)
    mu = torch.where(torch.rand(1, 1, 6, 6, generator=generator) > 0.5, 1.0, -1.0)
    oracle = MixtureOracle(mu, [1.0], sde)
    reverse = ReverseProcess(Denoiser(oracle, sde), probability_flow=True)
    z = torch.randn(mu.shape, generator=generator)
    mean, std = sde.marginal_prob(mu, 1.0)

    def rhs(t, x):
        return reverse.step(torch.from_numpy(x).reshape(mu.shape), t).drift.flatten().numpy()

    times = [1.0, 0.6, 0.3, 0.1, 0.02]
    solution = solve_ivp(rhs, (1.0, 0.02), (mean + std * z).flatten().numpy(), t_eval=times, rtol=1e-9, atol=1e-10)
    worst = 0.0
    for t, x in zip(times, solution.y.T):
        mean, std = sde.marginal_prob(mu, t)
        worst = max(worst, float(((torch.from_numpy(x).reshape(mu.shape) - mean - std * z).abs() / std).max()))
    return worst, 1e-5


def main():
    results = []
    for tau in CONTINUOUS:
        for kappa_schedule in ("linear", "constant"):
            sde = EdgePreservingSDE(default_diffusion(tau=tau, kappa_schedule=kappa_schedule))
            results.append((f"1 matched G^2 ({tau}, kappa {kappa_schedule})", *claim_1_matched_g_squared(sde)))
            results.append(
                (
                    f"2 sigma^2/a^2 non-decreasing ({tau}, kappa {kappa_schedule})",
                    *claim_2_sigma_over_a_non_decreasing(sde),
                )
            )
    for tau in ("linear_ramp", "cosine", "linear"):
        results.append((f"3 direct variance ODE ({tau})", *claim_3_direct_variance(tau)))
    for tau in ("linear_ramp", "sigmoid", "isotropic"):
        results.append((f"4 probability-flow ODE with x0_hat ({tau})", *claim_4_probability_flow_with_x0_hat(tau)))
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
