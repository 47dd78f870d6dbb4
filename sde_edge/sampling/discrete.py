"""Ancestral DDPM and DDIM on any grid, with per-pixel sigmas at x0_hat (SPEC section 5)."""
import torch

from sde_edge.sampling.grids import grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.score import denoise


@register_sampler("ddpm")
def ddpm(model, sde, x, ts, *, generator=None, callback=None, progress=False):
    """Ancestral sampling of q(x_s | x_t, x0_hat), a diagonal Gaussian (the paper's Eqs. 13-14)."""
    for t, s, reaches_zero in grid_steps(ts, progress, "ddpm"):
        d = denoise(model, sde, x, t)
        if callback is not None:
            callback({"t": t, "x": x, "x0_hat": d.x0})
        if reaches_zero:
            return d.x0
        mean, var = sde.posterior(x, d.x0, t, s, d.edges)
        x = mean + var.sqrt() * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return denoise(model, sde, x, ts[-1]).x0


@register_sampler("ddim")
def ddim(model, sde, x, ts, *, generator=None, callback=None, progress=False, eta=0.0):
    """DDIM: x_s = a_s x0_hat + sqrt(sigma_s^2 - eta^2 v) eps_hat + eta sqrt(v) z, v the DDPM
    posterior variance and eps_hat = (x_t - a_t x0_hat) / sigma_t; eta = 1 is ancestral DDPM."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
    for t, s, reaches_zero in grid_steps(ts, progress, "ddim"):
        d = denoise(model, sde, x, t)
        if callback is not None:
            callback({"t": t, "x": x, "x0_hat": d.x0})
        if reaches_zero:
            return d.x0
        var_s = sde.std_from_edges(d.edges, s.reshape(1, 1, 1, 1)).square().expand_as(x)
        eps_hat = d.noise / d.std
        if eta > 0:
            _, post_var = sde.posterior(x, d.x0, t, s, d.edges)  # the ancestral step's variance
            noise_var = eta**2 * post_var
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = sde.signal_coef(s) * d.x0 + (var_s - noise_var).sqrt() * eps_hat + noise_var.sqrt() * z
        else:
            x = sde.signal_coef(s) * d.x0 + var_s.sqrt() * eps_hat
    return denoise(model, sde, x, ts[-1]).x0
