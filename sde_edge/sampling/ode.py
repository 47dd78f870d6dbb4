"""Probability-flow ODE samplers (paper_appendix/math.md, section 5): scipy's adaptive RK45, fixed-step
Heun, and EDM's stochastic sampler (Heun with churn).

    dy/dt = f y - 0.5 G(x0_hat, t)^2 s_theta(y, t)
"""
import math

import torch

from sde_edge.odeint import integrate
from sde_edge.reverse import ReverseProcess
from sde_edge.sampling.grids import grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.tensors import noise_like

SCIPY_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")


@register_sampler("ode", continuous_time=True, choices={"method": SCIPY_METHODS})
def ode(denoiser, y, ts, *, generator=None, report, progress=False, rtol=1e-5, atol=1e-5, method="RK45",
        max_nfe=100_000):
    """The probability-flow ODE with an adaptive scipy solver. ``steps`` does not steer the solver:
    the grid's inner points are only where the callback's states are read off its dense output
    (each denoised once more, counted, for x0_hat). Host-synchronising by design (``sde_edge.odeint``)."""
    if method not in SCIPY_METHODS:
        raise ValueError(f"method must be one of {SCIPY_METHODS}, got {method!r}")
    reverse = ReverseProcess(denoiser, probability_flow=True)
    times = ts.tolist() if report.active else None
    y, _, states = integrate(lambda state, t: reverse.step(state, t).drift, y, float(ts[0]), float(ts[-1]),
                             rtol=rtol, atol=atol, method=method, max_nfe=max_nfe, progress=progress, t_eval=times)
    if report.active:
        for i, state in enumerate(states[:-1]):
            report(i, ts[i], state, denoiser(state, ts[i]))
    return y


@register_sampler("heun", continuous_time=True)
def heun(denoiser, y, ts, *, generator=None, report, progress=False):
    """Heun's second-order method on the probability-flow ODE (EDM, Algorithm 1, in t)."""
    return edm(denoiser, y, ts, generator=generator, report=report, progress=progress, s_churn=0.0)


@register_sampler("edm", continuous_time=True)
def edm(denoiser, y, ts, *, generator=None, report, progress=False, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf,
        s_noise=1.0):
    """EDM's stochastic sampler (Karras et al. 2022, Algorithm 2) for per-coordinate noise.

    Where the reference noise level sigma = b / a lies in [s_tmin, s_tmax], each step first moves
    back up to t_hat with sigma(t_hat) = (1 + gamma) sigma(t), gamma = min(s_churn / K, sqrt(2) - 1),
    by the process's own transition y <- a y + s_noise sqrt(v) z (per coordinate, s at the latest
    x0_hat), then takes a Heun step from t_hat to s. With s_churn = 0 it is ``heun``. The defaults
    are EDM's code's (deterministic); its ImageNet setting is s_churn=40, s_tmin=0.05, s_tmax=50,
    s_noise=1.003. Measured on the mixture oracle: churn is unbiased for isotropic noise, but on
    the edge process a strong churn (40 at 25-100 steps) skews the mode frequencies (chi-square
    p < 1e-6), since the re-noising takes sigma at an uncertain x0_hat; keep it small (~5) there.
    """
    for name, value in (("s_churn", s_churn), ("s_tmin", s_tmin), ("s_tmax", s_tmax), ("s_noise", s_noise)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    sde = denoiser.sde
    reverse = ReverseProcess(denoiser, probability_flow=True)
    gamma = min(s_churn / (len(ts) - 1), math.sqrt(2.0) - 1.0)
    reference_sigma = torch.exp(-0.5 * sde.log_snr(ts.double())).tolist()  # one host copy, not one per step
    latest = None  # the Denoised of the latest evaluation: its statistic shapes the churn noise
    for i, t, s in grid_steps(ts, progress, "edm" if s_churn else "heun"):
        y_before = y
        if gamma > 0 and s_tmin <= reference_sigma[i] <= s_tmax:
            t_hat = sde.time_of_log_snr(sde.log_snr(t) - 2.0 * math.log1p(gamma)).clamp(max=1.0)
            latest = latest or denoiser(y, t)
            a, v = sde.transition(t_hat, t, latest.statistic, y)
            y, t = a * y + s_noise * v.sqrt() * noise_like(y, generator), t_hat
        step = reverse.step(y, t)
        report(i, ts[i], y_before, step.denoised)
        dt = s - t  # negative: time runs backwards
        y_euler = y + dt * step.drift
        corrector = reverse.step(y_euler, s)
        y = y + dt * 0.5 * (step.drift + corrector.drift)
        latest = corrector.denoised
    return y
