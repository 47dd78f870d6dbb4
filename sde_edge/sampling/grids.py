"""Decreasing time grids t_0 = t_start > ... > t_K = t_end (k-diffusion style: separate from samplers)."""
import torch
from tqdm.auto import tqdm

GRIDS = ("uniform", "power", "logsnr", "edm")


def uniform_grid(steps, t_start, t_end):
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


def power_grid(steps, t_start, t_end, rho=2.0):
    """Uniform in t^(1/rho): dense near t_end, where the image forms."""
    ramp = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    return (t_start ** (1 / rho) + ramp * (t_end ** (1 / rho) - t_start ** (1 / rho))) ** rho


def _through_log_snr(values, t_start, t_end, sde):
    """Times of the reference log-SNR ``values``, with the exact end points kept."""
    grid = sde.time_of_log_snr(values)
    grid[0], grid[-1] = t_start, t_end
    return grid


def logsnr_grid(steps, t_start, t_end, sde):
    """Uniform in the reference log-SNR log(abar / (1 - abar)), inverted in closed form.
    An end point t_end = 0 (log-SNR = inf) is kept as the last point."""
    ends = sde.log_snr(torch.tensor([t_start, max(t_end, 1e-5)], dtype=torch.float64))
    values = torch.linspace(float(ends[0]), float(ends[1]), steps + 1, dtype=torch.float64)
    return _through_log_snr(values, t_start, t_end, sde)


def edm_grid(steps, t_start, t_end, sde, rho=7.0):
    """EDM's grid (Karras et al. 2022, Eq. 5): uniform in sigma^(1/rho) of the reference noise
    level sigma = b / a = exp(-logSNR / 2), rho = 7: dense at low noise."""
    ends = sde.log_snr(torch.tensor([t_start, max(t_end, 1e-5)], dtype=torch.float64))
    sigma_max, sigma_min = torch.exp(-0.5 * ends)
    ramp = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    sigma = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return _through_log_snr(-2.0 * torch.log(sigma), t_start, t_end, sde)


def time_grid(name, steps, t_start, t_end, *, sde=None, device=None, dtype=torch.float32):
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if name == "uniform":
        grid = uniform_grid(steps, t_start, t_end)
    elif name == "power":
        grid = power_grid(steps, t_start, t_end)
    elif name == "logsnr":
        grid = logsnr_grid(steps, t_start, t_end, sde)
    elif name == "edm":
        grid = edm_grid(steps, t_start, t_end, sde)
    else:
        raise ValueError(f"grid must be one of {GRIDS}, got {name!r}")
    return grid.to(device=device, dtype=dtype)


def grid_steps(ts, progress, name):
    """(i, t, s) for consecutive grid points, with a tqdm bar; t and s stay on the device."""
    for i in tqdm(range(len(ts) - 1), desc=name, disable=not progress, leave=False):
        yield i, ts[i], ts[i + 1]


def crosses(discontinuities, t, s):
    """Whether the step t -> s (s < t) passes a time where the process's noise jumps."""
    return any(float(s) < jump <= float(t) for jump in discontinuities)
