"""Decreasing time grids t_K = t_start > ... > t_0 = t_end (k-diffusion style: separate from samplers)."""
import torch
from tqdm.auto import tqdm

GRIDS = ("uniform", "power", "logsnr")


def uniform_grid(steps, t_start, t_end):
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


def power_grid(steps, t_start, t_end, rho=2.0):
    """Uniform in t^(1/rho): dense near t_end, where the image forms (EDM's schedule, in time)."""
    ramp = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    return (t_start ** (1 / rho) + ramp * (t_end ** (1 / rho) - t_start ** (1 / rho))) ** rho


def logsnr_grid(steps, t_start, t_end, sde):
    """Uniform in the isotropic log-SNR log(abar / (1 - abar)), inverted in closed form.
    The endpoint t_end = 0 (log-SNR = inf) is kept as the last point."""
    end = max(t_end, 1e-5)
    ends = torch.tensor([t_start, end], dtype=torch.float64)
    log_abar = sde.log_abar(ends)
    logsnr = log_abar - torch.log(-torch.expm1(log_abar))
    values = torch.linspace(float(logsnr[0]), float(logsnr[1]), steps + 1, dtype=torch.float64)
    grid = sde.schedule.time_of_log_abar(-torch.nn.functional.softplus(-values))  # log abar = -softplus(-logsnr)
    grid[0], grid[-1] = t_start, t_end
    return grid


def time_grid(name, steps, t_start, t_end, *, sde=None, device=None, dtype=torch.float32):
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if name == "uniform":
        grid = uniform_grid(steps, t_start, t_end)
    elif name == "power":
        grid = power_grid(steps, t_start, t_end)
    elif name == "logsnr":
        grid = logsnr_grid(steps, t_start, t_end, sde)
    else:
        raise ValueError(f"grid must be one of {GRIDS}, got {name!r}")
    return grid.to(device=device, dtype=dtype)


def grid_steps(ts, progress, name):
    """(t, s, reaches_zero) for consecutive grid points, with a tqdm bar. t and s stay on the
    device; reaches_zero (s <= 0) comes from a host copy of the grid, so loops never wait on the device."""
    last = ts.cpu() <= 0
    for i in tqdm(range(len(ts) - 1), desc=name, disable=not progress, leave=False):
        yield ts[i], ts[i + 1], bool(last[i + 1])
