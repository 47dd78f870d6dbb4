"""Reverse-SDE samplers (paper_appendix/math.md, section 5): Euler-Maruyama, predictor-corrector, torchsde.

All integrate dy = [f y - G(x0_hat, t)^2 s_theta] dt + G(x0_hat, t) dW_bar from t_start down
to t_eps on the grid ``ts``.
"""
import torch
import torchsde

from sde_edge.reverse import ReverseProcess
from sde_edge.sampling.grids import grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.tensors import is_brownian_path, noise_like


@register_sampler("euler_maruyama", continuous_time=True)
def euler_maruyama(denoiser, y, ts, *, generator=None, report, progress=False):
    """y_s = y - [f y - G^2 s_theta] (t - s) + G sqrt(t - s) z."""
    reverse = ReverseProcess(denoiser)
    for i, t, s in grid_steps(ts, progress, "euler_maruyama"):
        step = reverse.step(y, t)
        report(i, t, y, step.denoised)
        dt = t - s
        y = y - step.drift * dt + step.diffusion * dt.sqrt() * noise_like(y, generator, t, s)
    return y


def langevin_step(y, d, snr, generator):
    """One Langevin step at fixed t, preconditioned per coordinate by s^2 (x0_hat):
    y += eps s^2 score + sqrt(2 eps) s z, with eps = 2 (snr ||z|| / ||s score||)^2 per sample."""
    z = noise_like(y, generator)
    scaled_score = d.std * d.score
    ratio = z.flatten(1).norm(dim=1) / scaled_score.flatten(1).norm(dim=1).clamp_min(1e-12)
    step_size = (2.0 * (snr * ratio) ** 2).reshape(-1, *([1] * (y.dim() - 1)))
    return y + step_size * d.std * scaled_score + (2.0 * step_size).sqrt() * d.std * z


PREDICTORS = ("reverse_diffusion", "euler_maruyama")


@register_sampler("pc", continuous_time=True, choices={"predictor": PREDICTORS})
def predictor_corrector(denoiser, y, ts, *, generator=None, report, progress=False,
                        predictor="reverse_diffusion", snr=0.16, n_corrector=1):
    """Predictor-corrector (Song et al. 2021, Alg. 2-3): at each t, ``n_corrector`` Langevin steps,
    then one predictor step from t to s. The reverse-diffusion predictor uses the process's own
    one-step transition: y_s = (2 - a_ts) y + v_ts score + sqrt(v_ts) z."""
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    if not (isinstance(snr, (int, float)) and snr >= 0):
        raise ValueError(f"snr must be a number >= 0, got {snr!r}")
    if isinstance(n_corrector, bool) or not isinstance(n_corrector, int) or n_corrector < 0:
        raise ValueError(f"n_corrector must be an integer >= 0, got {n_corrector!r}")
    sde = denoiser.sde
    for i, t, s in grid_steps(ts, progress, "pc"):
        d = denoiser(y, t)
        report(i, t, y, d)
        for _ in range(n_corrector):
            y = langevin_step(y, d, snr, generator)
            d = denoiser(y, t)
        if predictor == "reverse_diffusion":
            a_ts, v_ts = sde.transition(t, s, d.statistic, y)
            y = (2.0 - a_ts) * y + v_ts * d.score + v_ts.sqrt() * noise_like(y, generator, t, s)
        else:
            g_sq = sde.diffusion_sq(d.statistic, t, y)
            dt = t - s
            drift = sde.drift_coef(t, y) * y - g_sq * d.score
            y = y - drift * dt + (g_sq * dt).sqrt() * noise_like(y, generator, t, s)
    return y


class _TimeReversed(torch.nn.Module):
    """The reverse SDE for torchsde in s = -t (which needs increasing times), on states (B, D):
    f_rev(s, y) = -drift(y, -s), g_rev = G. One model evaluation serves f and g at the same point."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, reverse, shape):
        super().__init__()
        self.reverse, self.shape = reverse, shape
        self._last = None

    def _step(self, s, y):
        if self._last is None or self._last[0] is not s or self._last[1] is not y:
            step = self.reverse.step(y.reshape(self.shape), -s)
            self._last = (s, y, -step.drift.flatten(1), step.diffusion.flatten(1))
        return self._last[2], self._last[3]

    def f(self, s, y):
        return self._step(s, y)[0]

    def g(self, s, y):
        return self._step(s, y)[1]


TORCHSDE_METHODS = ("euler", "milstein", "srk")


@register_sampler("torchsde", continuous_time=True, choices={"method": TORCHSDE_METHODS})
def torchsde_sampler(denoiser, y, ts, *, generator=None, report, progress=False, method="euler"):
    """``torchsde.sdeint`` on a uniform grid (torchsde steps with a fixed dt). Its Brownian motion
    is seeded from ``generator``, so runs repeat. torchsde holds the loop, so the callback's
    states come from its output at the grid times, each denoised once more (counted) for x0_hat."""
    if method not in TORCHSDE_METHODS:
        raise ValueError(f"method must be one of {TORCHSDE_METHODS}, got {method!r}")
    if is_brownian_path(generator):
        raise ValueError("the torchsde sampler draws its own Brownian path: give it a torch.Generator")
    steps = len(ts) - 1
    grid = ts.double().cpu()
    if not torch.allclose(grid[1:] - grid[:-1], grid[1:2] - grid[:1], rtol=1e-4, atol=0):
        raise ValueError("the torchsde sampler steps with a fixed dt: use grid='uniform'")
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device if generator else None))
    s0, s1 = -float(grid[0]), -float(grid[-1])
    flat = y.flatten(1)
    bm = torchsde.BrownianInterval(t0=s0, t1=s1, size=flat.shape, dtype=y.dtype, device=y.device, entropy=seed,
                                   levy_area_approximation="space-time" if method == "srk" else "none")
    # A hair over the interval / steps, so that rounding never adds a sliver of a step.
    dt = (s1 - s0) / steps * (1 + 1e-9)
    options = {"grad_free": True} if method == "milstein" else None
    times = -ts if report.active else torch.stack([-ts[0], -ts[-1]])
    reversed_sde = _TimeReversed(ReverseProcess(denoiser), y.shape)
    states = torchsde.sdeint(reversed_sde, flat, times.to(y.dtype), bm=bm, method=method, dt=dt, options=options)
    if report.active:
        for i in range(steps):
            state = states[i].reshape(y.shape)
            report(i, ts[i], state, denoiser(state, ts[i]))
    return states[-1].reshape(y.shape)
