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


def explicit_grid(times, steps, t_start, t_end):
    """Given times (a tensor, a sequence or a ``FittedGrid``), checked: steps + 1 of them, strictly
    decreasing from t_start to t_end."""
    times = torch.as_tensor(getattr(times, "times", times), dtype=torch.float64).flatten()
    if len(times) != steps + 1:
        raise ValueError(f"the grid has {len(times)} times, {steps} steps need {steps + 1}")
    if abs(float(times[0]) - t_start) > 1e-9 or abs(float(times[-1]) - t_end) > 1e-9:
        raise ValueError(f"the grid runs from t = {float(times[0]):g} to {float(times[-1]):g}; "
                         f"this sampling runs from {t_start:g} to {t_end:g}")
    if not bool((times[1:] < times[:-1]).all()):
        raise ValueError("the grid's times must decrease strictly")
    return times


def time_grid(name, steps, t_start, t_end, *, sde=None, device=None, dtype=torch.float32):
    """The grid ``name`` (one of GRIDS), or explicit times (see ``explicit_grid``)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(name, str):
        grid = explicit_grid(name, steps, t_start, t_end)
    elif name == "uniform":
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
