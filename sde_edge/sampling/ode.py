"""Probability-flow ODE samplers (SPEC section 5): scipy's adaptive RK45 and fixed-step Heun.

    dX/dt = f X - 0.5 G(x0_hat, t)^2 s_theta(X, t)
"""
from sde_edge.odeint import integrate
from sde_edge.sampling.grids import grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.score import denoise


@register_sampler("ode", continuous_time=True)
def ode(model, sde, x, ts, *, generator=None, callback=None, progress=False, rtol=1e-5, atol=1e-5,
        method="RK45", max_nfe=100_000):
    """The probability-flow ODE with an adaptive scipy solver; ``steps`` (the grid) is ignored,
    apart from its end points. Host-synchronising by design (see ``sde_edge.odeint``)."""
    reverse = sde.reverse(model, probability_flow=True)

    def drift(state, t):
        step = reverse.sde(state, t)
        if callback is not None:
            callback({"t": t, "x": state, "x0_hat": step.denoised.x0})
        return step.drift

    x, _ = integrate(drift, x, float(ts[0]), float(ts[-1]), rtol=rtol, atol=atol, method=method,
                     max_nfe=max_nfe, progress=progress)
    return denoise(model, sde, x, ts[-1]).x0


@register_sampler("heun", continuous_time=True)
def heun(model, sde, x, ts, *, generator=None, callback=None, progress=False):
    """Heun's second-order method on the probability-flow ODE (EDM, Algorithm 1, in t)."""
    reverse = sde.reverse(model, probability_flow=True)
    for t, s, _ in grid_steps(ts, progress, "heun"):
        step = reverse.sde(x, t)
        if callback is not None:
            callback({"t": t, "x": x, "x0_hat": step.denoised.x0})
        dt = s - t  # negative: time runs backwards
        x_euler = x + dt * step.drift
        x = x + dt * 0.5 * (step.drift + reverse.sde(x_euler, s).drift)
    return denoise(model, sde, x, ts[-1]).x0

