"""scipy's adaptive ODE solvers on torch states (the probability-flow sampler and the ODE likelihood).

The state crosses to the host in float64 at every evaluation: scipy runs on the CPU, so
this path synchronises with the device by design (the one place in the library that does).
"""
import torch
from tqdm.auto import tqdm


class SolverBudgetExceeded(RuntimeError):
    """The adaptive solver needed more than ``max_nfe`` evaluations."""


def integrate(rhs, state, t0, t1, *, rtol=1e-5, atol=1e-5, method="RK45", max_nfe=None, progress=False, desc="ode",
              t_eval=None):
    """Solve d state / dt = rhs(state, t) from t0 to t1; returns (state at t1, number of rhs calls,
    the states at the times ``t_eval`` from the solver's dense output, or None).

    ``rhs`` takes and returns torch tensors shaped like ``state`` (on its device and dtype);
    ``t`` reaches it as a Python float. Raises SolverBudgetExceeded after ``max_nfe`` calls.
    """
    from scipy.integrate import solve_ivp  # costly to import (about a second): only when an ODE is solved

    shape, device, dtype = state.shape, state.device, state.dtype
    bar = tqdm(desc=desc, unit="nfe", disable=not progress, leave=False)
    count = 0

    def scipy_rhs(t, y):
        nonlocal count
        if max_nfe is not None and count >= max_nfe:
            raise SolverBudgetExceeded(f"the ODE solver used max_nfe={max_nfe} evaluations before reaching t={t1:g} "
                                       f"(stopped at t={t:.4g}); raise max_nfe or loosen rtol/atol")
        count += 1
        bar.update(1)
        current = torch.from_numpy(y).to(device=device, dtype=dtype).reshape(shape)
        return rhs(current, t).detach().double().cpu().numpy().ravel()

    try:
        solution = solve_ivp(scipy_rhs, (t0, t1), state.detach().double().cpu().numpy().ravel(), method=method,
                             rtol=rtol, atol=atol, dense_output=t_eval is not None)
    finally:
        bar.close()
    if not solution.success:
        raise RuntimeError(f"solve_ivp failed: {solution.message}")

    def to_torch(values):
        return torch.from_numpy(values).to(device=device, dtype=dtype).reshape(shape)

    states = None if t_eval is None else [to_torch(solution.sol(t)) for t in t_eval]
    return to_torch(solution.y[:, -1]), count, states
