"""Step noise from one Brownian path: what couples a stochastic sampler on two time grids.

A stochastic sampler draws, at each step from t to s, a standard normal z per coordinate. Given a
``BrownianNoise`` in place of its generator, z is instead the path's normalised increment

    z = (W(c(s)) - W(c(t))) / sqrt(|c(s) - c(t)|),      W a Brownian motion per coordinate,

on a clock c. It is standard normal and independent across the steps of one grid, so each
grid's samples keep exactly their law; but two grids now share one path (a coarse step's increment
is the sum of the fine steps' inside it), and their difference is the sampler's strong error on
that path. That difference is what ``fit_grid`` minimises for a stochastic sampler: for any coupling,
W2(law of the K-step samples, law of the reference's)^2 <= E ||x_K - x_ref||^2, so the coupled
RMSE bounds the Wasserstein-2 distance to the reference sampler's samples, as the RMSE from shared
prior draws does for a deterministic one (paper_appendix/math.md, section 10).

The clock decides how close the coupling is. The ancestral step (ddpm, dpmpp_2m_sde at eta = 1)
adds s_s^2 (1 - e^(-2h)) of variance, h the step in log-SNR lambda; that is the variance the path
s_s e^(-lambda_s) dW(v) gathers over the step in v = e^(2 lambda) = SNR, with a constant weight, so
on the SNR clock a coarse step's noise is *exactly* the fine steps' noise summed (the isotropic
case; with per-pixel noise the reference SNR is an approximation of each pixel's). On the time
clock c(t) = t the weights differ along a step. On the mixture oracle (dpmpp_2m_sde, 6 to 25 steps
against 1,000) the two clocks' coupled errors differ by under 10%: the drift's error dominates
there; at 200 steps against 1,000 on the uniform grid the SNR clock's is 0 (the same samples), the
time clock's 0.03, against 0.50 for independent noise.

The path is built where it is read: it keeps W's increments between the clock points queried so
far; a point beyond them adds an independent increment, a point between two splits theirs by the
Brownian bridge (the smaller part drawn, the larger the rest, so no part is a small difference of
large ones). A path's values depend on the order of its queries, its law does not: every grid that
is to share it must be sampled with the *same* object. (torchsde's ``BrownianInterval``, tried
first, took minutes for one 1,000-step walk over the SNR clock's range, e^(+-20).)
"""
import bisect
import math

import torch

_LOG_SNR_BOUND = 20.0


class NotAStepNoise(ValueError):
    """A sampler asked the path for noise that is not a time step's: it cannot be driven by one."""


def snr_clock(sde):
    """t -> the reference SNR abar / (1 - abar) at t, clamped to [e^-20, e^20] (t = 0 included)."""
    def clock(t):
        value = float(sde.log_snr(torch.tensor([max(float(t), 1e-12)], dtype=torch.float64))[0])
        return math.exp(min(max(value, -_LOG_SNR_BOUND), _LOG_SNR_BOUND))
    return clock


class BrownianNoise:
    """One Brownian path per coordinate of a ``shape`` batch, from ``seed``, read on ``clock`` (a
    monotone function of time; None: time itself); pass it to ``sample`` as ``generator``. Only a
    time step's noise can be read from it (``step_noise``)."""

    def __init__(self, shape, seed, *, clock=None, device="cpu", dtype=torch.float32):
        self.shape, self.seed, self.device, self.dtype = tuple(shape), int(seed), torch.device(device), dtype
        self.clock = clock or float
        self._generator = torch.Generator(self.device).manual_seed(self.seed)
        self._points, self._pieces = [], []  # sorted clock points; W(points[i + 1]) - W(points[i])

    def _normal(self, variance):
        z = torch.randn(self.shape, generator=self._generator, device=self.device, dtype=self.dtype)
        return math.sqrt(variance) * z

    def _insert(self, v):
        points, pieces = self._points, self._pieces
        k = bisect.bisect_left(points, v)
        if k < len(points) and points[k] == v:
            return
        if not points:
            pass
        elif k == 0:
            pieces.insert(0, self._normal(points[0] - v))
        elif k == len(points):
            pieces.append(self._normal(v - points[-1]))
        else:
            a, b, whole = points[k - 1], points[k], pieces[k - 1]
            bridge_variance = (v - a) * (b - v) / (b - a)
            if v - a <= b - v:
                left = (v - a) / (b - a) * whole + self._normal(bridge_variance)
                right = whole - left
            else:
                right = (b - v) / (b - a) * whole + self._normal(bridge_variance)
                left = whole - right
            pieces[k - 1:k] = [left, right]
        points.insert(k, v)

    def increment(self, low, high):
        """W(high) - W(low) on the clock (low < high)."""
        self._insert(low)
        self._insert(high)
        i, j = bisect.bisect_left(self._points, low), bisect.bisect_left(self._points, high)
        total = self._pieces[i]
        for piece in self._pieces[i + 1:j]:
            total = total + piece
        return total

    def step_noise(self, y, t, s):
        """The standard normal of the step from t to s (either order), shaped like ``y``; zero for a
        step of no length on the clock (which adds no variance)."""
        if t is None or s is None:
            raise NotAStepNoise("this sampler draws noise that is not a time step's (a Langevin corrector, EDM's "
                             "churn, torchsde's own path): it cannot be driven by a BrownianNoise")
        if tuple(y.shape) != self.shape:
            raise ValueError(f"the BrownianNoise is for states {self.shape}, this step's are {tuple(y.shape)}")
        span = self.step_span(t, s)
        if span is None:
            return torch.zeros_like(y)
        low, high = span
        return (self.increment(low, high) / math.sqrt(high - low)).to(device=y.device, dtype=y.dtype)

    def step_span(self, t, s):
        """(low, high): the step from t to s (either order) on the clock; None for a step of no length
        there (t = s in the states' precision, or both ends beyond the clamp: noise < e^-10)."""
        low, high = sorted((self.clock(float(s)), self.clock(float(t))))
        return (low, high) if high > low else None
