"""Samplers of the discrete chain, on any grid ending at t = 0 (paper_appendix/math.md, section 5):
ancestral DDPM, DDIM and the second-order multistep DPM-Solver++(2M). They take sigma at
x0_hat per coordinate and handle a jump of sigma (tau = linear) exactly or by restarting.
"""
import torch

from sde_edge.sampling.grids import crosses, grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.tensors import noise_like


@register_sampler("ddpm")
def ddpm(denoiser, y, ts, *, generator=None, report, progress=False):
    """Ancestral sampling of q(y_s | y_t, x0_hat), a diagonal Gaussian (the paper's Eqs. 13-14)."""
    sde = denoiser.sde
    for i, t, s in grid_steps(ts, progress, "ddpm"):
        d = denoiser(y, t)
        report(i, t, y, d)
        mean, var = sde.posterior(y, d.x0, t, s, d.statistic)
        y = mean + var.sqrt() * noise_like(y, generator, t, s)
    return y


def ddim_step(sde, y, d, s):
    """The deterministic DDIM step from (y, t) to s: alpha_s x0_hat + s(x0_hat, s) eps_hat, with
    eps_hat = n_hat / s(x0_hat, t) read off the ``Denoised`` d at t (also progressive distillation's
    teacher step and the student's, sde_edge/training/distill.py)."""
    return sde.alpha(s, y) * d.x0 + sde.noise_std(d.statistic, s, y) * (d.noise / d.std)


@register_sampler("ddim")
def ddim(denoiser, y, ts, *, generator=None, report, progress=False, eta=0.0):
    """DDIM: y_s = alpha_s x0_hat + sqrt(s_s^2 - eta^2 v) eps_hat + eta sqrt(v) z, with v the DDPM
    posterior variance and eps_hat = (y_t - alpha_t x0_hat) / s_t; eta = 1 is ancestral DDPM."""
    if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
        raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
    sde = denoiser.sde
    for i, t, s in grid_steps(ts, progress, "ddim"):
        d = denoiser(y, t)
        report(i, t, y, d)
        if eta > 0:
            var_s = sde.noise_std(d.statistic, s, y).square()
            _, post_var = sde.posterior(y, d.x0, t, s, d.statistic)  # the ancestral step's variance
            noise_var = eta**2 * post_var
            y = (sde.alpha(s, y) * d.x0 + (var_s - noise_var).clamp_min(0).sqrt() * (d.noise / d.std)
                 + noise_var.sqrt() * noise_like(y, generator, t, s))
        else:
            y = ddim_step(sde, y, d, s)
    return y


@register_sampler("dpmpp_2m")
def dpmpp_2m(denoiser, y, ts, *, generator=None, report, progress=False):
    """DPM-Solver++(2M) (Lu et al. 2022) in each coordinate's own log-SNR lambda = log(alpha / s),
    with s at the current x0_hat:

        h = lambda_s - lambda_t,  r = h_prev / h,  D = (1 + 1/(2r)) x0_hat - x0_hat_prev / (2r),
        y_s = (s_s / s_t) y_t - alpha_s (e^-h - 1) D.

    The first step, the last (to s = 0, where it returns x0_hat) and every step on either side of a
    jump of s (tau = linear, at t_phi) are first order (DDIM): no extrapolation across the jump.
    """
    sde = denoiser.sde
    host = ts.tolist()
    previous = None  # (t, x0_hat) of the step before, when it may be extrapolated from
    for i, t, s in grid_steps(ts, progress, "dpmpp_2m"):
        d = denoiser(y, t)
        report(i, t, y, d)
        alpha_s, std_s = sde.alpha(s, y), sde.noise_std(d.statistic, s, y)
        if host[i + 1] <= 0:
            y = alpha_s * d.x0
            continue
        log_snr_t = torch.log(sde.alpha(t, y) / d.std)
        h = torch.log(alpha_s / std_s) - log_snr_t
        jump = crosses(sde.discontinuities, host[i], host[i + 1])
        x0 = d.x0
        if previous is not None and not jump:
            t_prev, x0_prev = previous
            r = (log_snr_t - torch.log(sde.alpha(t_prev, y) / sde.noise_std(d.statistic, t_prev, y))) / h
            x0 = (1 + 0.5 / r) * d.x0 - (0.5 / r) * x0_prev
        y = (std_s / d.std) * y - alpha_s * torch.expm1(-h) * x0
        previous = None if jump else (t, d.x0)
    return y
