"""Higher-order and stochastic multistep solvers of the discrete chain in each coordinate's own
log-SNR lambda = log(alpha / s), s at the current x0_hat (paper_appendix/math.md, section 5).

With h = lambda_s - lambda_t and eta >= 0, the data-prediction form of the reverse SDE
(Lu et al. 2022, DPM-Solver++; eta = 0 is the probability-flow ODE, eta = 1 the ancestral chain)
integrates exactly to

    y_s = (s_s / s_t) e^(-eta h) y_t + alpha_s int_0^h (1 + eta) e^(-(1 + eta)(h - u)) x0(lambda_t + u) du
          + s_s sqrt(1 - e^(-2 eta h)) z,

and x0(lambda) is expanded around lambda_t from the previous steps' x0_hat. With h_eta =
(1 + eta) h and phi_1 = 1 - e^(-h_eta), phi_2 = 1 - phi_1 / h_eta, phi_3 = phi_2 / h_eta - 1/2:

    first order   alpha_s phi_1 D0
    second order  + alpha_s phi_2 d1                    (d1 ~ h x0')
    third order   + alpha_s (phi_2 d1 - 2 phi_3 d2)      (d1 ~ h x0', d2 ~ h^2 x0'' / 2)

from D0 = x0_hat now and D1, D2 at lambda_t - r0 h and lambda_t - (r0 + r1) h. ``dpmpp_2m_sde``
uses DPM-Solver++(2M)'s midpoint correction alpha_s phi_1 (D0 - D1) / (2 r0), so that eta = 0 is
``dpmpp_2m`` (which stays its own short writing in ``discrete.py`` on purpose: the test that eta = 0
equals it compares two independent derivations, not this code with itself). Every step after a
jump of s (tau = linear) restarts at first order, and the last step to t = 0 returns x0_hat, as in
``dpmpp_2m``. The noise z is per coordinate, scaled by the process's own std at x0_hat.
"""
import torch

from sde_edge.sampling.grids import crosses, grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.tensors import noise_like


def _check_eta(eta):
    if not (isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta >= 0):
        raise ValueError(f"eta must be a number >= 0, got {eta!r}")


def _multistep(denoiser, y, ts, *, generator, report, progress, name, eta, order):
    """The solver of the module docstring; ``order`` 2 with the midpoint correction or 3."""
    _check_eta(eta)
    sde = denoiser.sde
    host = ts.tolist()
    history = []  # (t, x0_hat) of earlier steps since the last restart, newest first

    def log_snr(time, std, like):
        return torch.log(sde.alpha(time, like) / std)

    for i, t, s in grid_steps(ts, progress, name):
        d = denoiser(y, t)
        report(i, t, y, d)
        alpha_s, std_s = sde.alpha(s, y), sde.noise_std(d.statistic, s, y)
        if host[i + 1] <= 0:
            y = alpha_s * d.x0
            continue
        lam_t = log_snr(t, d.std, y)
        h = log_snr(s, std_s, y) - lam_t
        h_eta = (1 + eta) * h
        phi_1 = -torch.expm1(-h_eta)
        update = phi_1 * d.x0
        jump = crosses(sde.discontinuities, host[i], host[i + 1])
        if history and not jump:
            # earlier log-SNRs at the current statistic: one consistent per-coordinate time axis
            lams = [log_snr(time, sde.noise_std(d.statistic, time, y), y) for time, _ in history]
            r0 = (lam_t - lams[0]) / h
            d1_0 = (d.x0 - history[0][1]) / r0
            phi_2 = 1 - phi_1 / h_eta
            if order == 2:
                update = update + 0.5 * phi_1 * d1_0
            elif len(history) == 1:
                update = update + phi_2 * d1_0
            else:
                r1 = (lams[0] - lams[1]) / h
                d1_1 = (history[0][1] - history[1][1]) / r1
                d2 = (d1_0 - d1_1) / (r0 + r1)
                d1 = d1_0 + r0 * d2
                phi_3 = phi_2 / h_eta - 0.5
                update = update + phi_2 * d1 - 2 * phi_3 * d2
        y = (std_s / d.std) * torch.exp(-eta * h) * y + alpha_s * update
        if eta > 0:
            y = y + std_s * (-torch.expm1(-2 * eta * h)).sqrt() * noise_like(y, generator, t, s)
        history = [] if jump else [(t, d.x0)] + history[:order - 2]
    return y


@register_sampler("dpmpp_2m_sde")
def dpmpp_2m_sde(denoiser, y, ts, *, generator=None, report, progress=False, eta=1.0):
    """DPM-Solver++(2M) SDE: the second-order multistep solver with eta of fresh noise per step
    (eta = 0 is ``dpmpp_2m``; eta = 1 the ancestral chain's noise level)."""
    return _multistep(denoiser, y, ts, generator=generator, report=report, progress=progress,
                      name="dpmpp_2m_sde", eta=eta, order=2)


@register_sampler("dpmpp_3m")
def dpmpp_3m(denoiser, y, ts, *, generator=None, report, progress=False, eta=0.0):
    """DPM-Solver++(3M): third-order multistep from the last three x0_hat (deterministic at eta = 0;
    eta > 0 is its SDE form)."""
    return _multistep(denoiser, y, ts, generator=generator, report=report, progress=progress,
                      name="dpmpp_3m", eta=eta, order=3)
