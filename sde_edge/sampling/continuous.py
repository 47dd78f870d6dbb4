"""Reverse-SDE samplers (SPEC section 5): Euler-Maruyama, predictor-corrector, torchsde.

All integrate dX = [f X - G(x0_hat, t)^2 s_theta] dt + G(x0_hat, t) dW_bar from t_start
down to t_eps on the grid ``ts`` and return the denoised x0_hat at t_eps.
"""
import torch
import torchsde

from sde_edge.sampling.grids import grid_steps
from sde_edge.sampling.registry import register_sampler
from sde_edge.score import denoise


def _noise_like(x, generator):
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def euler_maruyama_step(reverse, x, t, s, generator):
    """x_s = x - [f x - G^2 s_theta] (t - s) + G sqrt(t - s) z; returns (x_s, the reverse-SDE step at t)."""
    step = reverse.sde(x, t)
    dt = t - s
    return x - step.drift * dt + step.diffusion * dt.sqrt() * _noise_like(x, generator), step


@register_sampler("euler_maruyama", continuous_time=True)
def euler_maruyama(model, sde, x, ts, *, generator=None, callback=None, progress=False):
    """The reverse SDE by Euler-Maruyama, ending with the denoised x0_hat at t_eps."""
    reverse = sde.reverse(model)
    for t, s, _ in grid_steps(ts, progress, "euler_maruyama"):
        x_next, step = euler_maruyama_step(reverse, x, t, s, generator)
        if callback is not None:
            callback({"t": t, "x": x, "x0_hat": step.denoised.x0})
        x = x_next
    return denoise(model, sde, x, ts[-1]).x0


def langevin_corrector(model, sde, x, t, *, snr, n_steps, generator):
    """Langevin MCMC at fixed t, preconditioned per pixel by sigma^2 (x0_hat):
    x += eps sigma^2 s + sqrt(2 eps) sigma z, with eps = 2 (snr ||z|| / ||sigma s||)^2 per sample."""
    for _ in range(n_steps):
        d = denoise(model, sde, x, t)
        z = _noise_like(x, generator)
        scaled_score = d.std * d.score
        ratio = z.flatten(1).norm(dim=1) / scaled_score.flatten(1).norm(dim=1).clamp_min(1e-12)
        step_size = (2.0 * (snr * ratio) ** 2).reshape(-1, *([1] * (x.dim() - 1)))
        x = x + step_size * d.std * scaled_score + (2.0 * step_size).sqrt() * d.std * z
    return x


def reverse_diffusion_step(model, sde, x, t, s, generator):
    """Song et al.'s reverse-diffusion predictor with the process's own discretisation
    x_t = a_ts x_s + sqrt(v_ts) z, v_ts = sigma_t^2 - a_ts^2 sigma_s^2 (sigmas at x0_hat)."""
    d = denoise(model, sde, x, t)
    a_ts = sde.signal_coef(t) / sde.signal_coef(s)
    var_s = sde.std_from_edges(d.edges, s.reshape(1, 1, 1, 1)).square()
    var_ts = (d.std.square() - a_ts**2 * var_s).clamp_min(0.0)
    x_mean = x - (a_ts - 1.0) * x + var_ts * d.score
    return x_mean + var_ts.sqrt() * _noise_like(x, generator), d


PREDICTORS = ("reverse_diffusion", "euler_maruyama")


@register_sampler("pc", continuous_time=True)
def predictor_corrector(model, sde, x, ts, *, generator=None, callback=None, progress=False,
                        predictor="reverse_diffusion", snr=0.16, n_corrector=1):
    """Predictor-corrector (Song et al. 2021, Alg. 2-3): at each t, ``n_corrector`` Langevin
    steps, then one predictor step from t to s."""
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    reverse = sde.reverse(model)
    for t, s, _ in grid_steps(ts, progress, "pc"):
        x = langevin_corrector(model, sde, x, t, snr=snr, n_steps=n_corrector, generator=generator)
        if predictor == "reverse_diffusion":
            x, d = reverse_diffusion_step(model, sde, x, t, s, generator)
        else:
            x, step = euler_maruyama_step(reverse, x, t, s, generator)
            d = step.denoised
        if callback is not None:
            callback({"t": t, "x": x, "x0_hat": d.x0})
    return denoise(model, sde, x, ts[-1]).x0


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
            step = self.reverse.sde(y.reshape(self.shape), -s)
            self._last = (s, y, -step.drift.flatten(1), step.diffusion.flatten(1))
        return self._last[2], self._last[3]

    def f(self, s, y):
        return self._step(s, y)[0]

    def g(self, s, y):
        return self._step(s, y)[1]


TORCHSDE_METHODS = ("euler", "milstein", "srk")


@register_sampler("torchsde", continuous_time=True)
def torchsde_sampler(model, sde, x, ts, *, generator=None, callback=None, progress=False, method="euler"):
    """``torchsde.sdeint`` on a uniform grid (torchsde steps with a fixed dt). Its Brownian
    motion is seeded from ``generator``, so runs repeat. ``callback`` sees the start only;
    torchsde holds the loop and synchronises with the device at every step (it compares times
    on the host), which the benchmark shows."""
    if method not in TORCHSDE_METHODS:
        raise ValueError(f"method must be one of {TORCHSDE_METHODS}, got {method!r}")
    steps = len(ts) - 1
    grid = ts.double().cpu()
    if not torch.allclose(grid[1:] - grid[:-1], grid[1:2] - grid[:1], rtol=1e-4, atol=0):
        raise ValueError("the torchsde sampler steps with a fixed dt: use grid='uniform'")
    if callback is not None:
        callback({"t": ts[0], "x": x, "x0_hat": None})
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device if generator else None))
    s0, s1 = -float(grid[0]), -float(grid[-1])
    flat = x.flatten(1)
    bm = torchsde.BrownianInterval(t0=s0, t1=s1, size=flat.shape, dtype=x.dtype, device=x.device, entropy=seed,
                                   levy_area_approximation="space-time" if method == "srk" else "none")
    # A hair over the interval / steps, so that rounding never adds a sliver of a step.
    dt = (s1 - s0) / steps * (1 + 1e-9)
    options = {"grad_free": True} if method == "milstein" else None
    reversed_sde = _TimeReversed(sde.reverse(model), x.shape)
    ys = torchsde.sdeint(reversed_sde, flat, torch.tensor([s0, s1], dtype=x.dtype, device=x.device), bm=bm,
                         method=method, dt=dt, options=options)
    return denoise(model, sde, ys[-1].reshape(x.shape), ts[-1]).x0
