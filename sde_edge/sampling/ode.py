"""Probability-flow ODE samplers (SPEC section 5): scipy's adaptive RK45 and fixed-step Heun.

    dX/dt = f X - 0.5 G(x0_hat, t)^2 s_theta(X, t)
"""
import torch
from scipy.integrate import solve_ivp
from tqdm.auto import tqdm

from sde_edge.sampling.grids import grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.score import denoise


class SolverBudgetExceeded(RuntimeError):
    pass


def solve_probability_flow(rhs_torch, x, t_start, t_end, *, rtol, atol, method="RK45", max_nfe=None, progress=False, desc="ode"):
    """Integrate dx/dt = rhs_torch(x, t) with ``scipy.integrate.solve_ivp`` from t_start to t_end.

    The state crosses to the host in float64 at every evaluation: scipy's solvers run on the
    CPU, so this path synchronises with the device by design (the one sampler that does).
    Returns (x at t_end, number of evaluations); raises SolverBudgetExceeded past ``max_nfe``.
    """
    shape, device, dtype = x.shape, x.device, x.dtype
    bar = tqdm(desc=desc, unit="nfe", disable=not progress, leave=False)
    count = 0

    def rhs(t, y):
        nonlocal count
        if max_nfe is not None and count >= max_nfe:
            raise SolverBudgetExceeded(f"the ODE solver used its max_nfe={max_nfe} evaluations before reaching t={t_end}")
        count += 1
        bar.update(1)
        state = torch.from_numpy(y).to(device=device, dtype=dtype).reshape(shape)
        return rhs_torch(state, t).double().cpu().numpy().ravel()

    try:
        solution = solve_ivp(rhs, (t_start, t_end), x.double().cpu().numpy().ravel(), method=method, rtol=rtol, atol=atol)
    finally:
        bar.close()
    if not solution.success:
        raise RuntimeError(f"solve_ivp failed: {solution.message}")
    return torch.from_numpy(solution.y[:, -1]).to(device=device, dtype=dtype).reshape(shape), count


@register_sampler("ode", continuous_time=True)
def ode(model, sde, x, ts, *, generator=None, callback=None, progress=False, rtol=1e-5, atol=1e-5,
        method="RK45", max_nfe=100_000):
    """The probability-flow ODE with an adaptive scipy solver; ``steps`` (the grid) is ignored,
    apart from its end points."""
    reverse = sde.reverse(model, probability_flow=True)

    def drift(state, t):
        step = reverse.sde(state, t)
        if callback is not None:
            callback({"t": t, "x": state, "x0_hat": step.denoised.x0})
        return step.drift

    x, _ = solve_probability_flow(drift, x, float(ts[0]), float(ts[-1]), rtol=rtol, atol=atol, method=method,
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

