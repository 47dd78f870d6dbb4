"""The interface of every process: a linear Gaussian SDE diagonal in an orthonormal basis
(paper_appendix/math.md, sections 2-3). ``sde_edge.processes.edge`` holds the edge-preserving process,
``sde_edge.processes.spectral`` the frequency-shaped ones; see ``sde_edge.processes.edge`` for the notation."""
import abc
import math

import torch

from sde_edge.fields import Field, integer, number
from sde_edge.processes.bases import IDENTITY
from sde_edge.processes.schedules import LinearBetaSchedule
from sde_edge.tensors import check_images, time_like


class SDE(abc.ABC):
    """A linear Gaussian process diagonal in ``basis`` (see the module docstring).

    Subclasses give ``noise_statistic``, ``alpha``, ``noise_std``, ``drift_coef`` and
    ``diffusion_sq``; everything a sampler needs follows from those. All times t are tensors of
    shape (B, 1, 1, 1) (or 0-d); ``like`` is a tensor of coordinates (B, C, H, W) that the
    coefficient must broadcast against (a frequency-shaped process needs its size).
    """

    basis = IDENTITY
    discontinuities = ()  # times at which s(x0, t) jumps: no continuous-time form there
    name = ""  # diffusion.process of a registered subclass
    fields = {  # the reference schedule a(t), b(t) that every process shares (config.diffusion)
        "num_steps": Field(500, integer(2), "N, the discrete chain's steps"),
        "beta_min": Field(1e-4, number(0, 1, low_open=True, high_open=True), "beta of the first step"),
        "beta_max": Field(2e-2, number(0, 1, low_open=True, high_open=True), "beta of the last step"),
        "t_eps": Field(1e-3, number(0, 1, low_open=True, high_open=True), "the smallest time trained and sampled"),
    }

    def __init__(self, config):
        """``config``: a validated ``config.diffusion`` section (``sde_edge.config`` validates it at load)."""
        self.config = config.copy_and_resolve_references()  # later edits must not leak in
        c = self.config
        self.schedule = LinearBetaSchedule(c.num_steps, c.beta_min, c.beta_max)  # the reference a(t), b(t)
        self.t_eps = c.t_eps

    def __repr__(self):
        c = self.config
        return f"{type(self).__name__}(N={c.num_steps})"

    @classmethod
    def check_config(cls, diffusion, prefix="diffusion"):
        """Rules that tie fields together (each field's own rule is in ``fields``)."""
        if diffusion.beta_min >= diffusion.beta_max:
            raise ValueError(f"{prefix}.beta_min must be < {prefix}.beta_max, got {diffusion.beta_min!r} >= "
                             f"{diffusion.beta_max!r}")

    @classmethod
    def noise_depends_on(cls, diffusion):
        """Whether s depends on x0 for this ``config.diffusion`` (if not, a network may predict eps)."""
        return True

    @property
    def num_steps(self):
        return self.config.num_steps

    # --- the basis -------------------------------------------------------------------------------
    def to_basis(self, x):
        """Pixel images -> the process's coordinates y = U^T x."""
        return self.basis.forward(x)

    def from_basis(self, y):
        """The process's coordinates -> pixel images x = U y."""
        return self.basis.inverse(y)

    # --- the per-coordinate coefficients ------------------------------------------------------------
    @abc.abstractmethod
    def noise_statistic(self, x0):
        """What s(x0, t) depends on, computed once per image (the edge map), or None."""

    @abc.abstractmethod
    def alpha(self, t, like):
        """alpha(t), the signal coefficient of each coordinate."""

    @abc.abstractmethod
    def noise_std(self, statistic, t, like):
        """s(x0, t) of each coordinate, given ``statistic = noise_statistic(x0)``."""

    @abc.abstractmethod
    def drift_coef(self, t, like):
        """f(t) = d log alpha / dt of each coordinate."""

    @abc.abstractmethod
    def diffusion_sq(self, statistic, t, like):
        """G(x0, t)^2 = d s^2/dt - 2 f s^2 of each coordinate."""

    # --- continuity ----------------------------------------------------------------------------------
    @property
    def is_continuous(self):
        return not self.discontinuities

    def check_continuous(self):
        """Raise if the SDE has no continuous-time form (s jumps)."""
        if not self.is_continuous:
            raise ValueError(f"{self!r}: s(x0, t) jumps at t = {self.discontinuities}, so the SDE has no "
                             "continuous-time form there; use a discrete sampler ('ddpm', 'ddim')")

    # --- one step of the chain (score_sde's ``discretize``) -----------------------------------------------
    def transition(self, t, s, statistic, like):
        """(a_ts, v_ts) of q(y_t | y_s) = N(a_ts y_s, v_ts) for s < t, per coordinate:
        a_ts = alpha(t) / alpha(s), v_ts = s_t^2 - a_ts^2 s_s^2 (>= 0: s^2 / alpha^2 never decreases)."""
        a_ts = self.alpha(t, like) / self.alpha(s, like)
        v_ts = self.noise_std(statistic, t, like).square() - a_ts.square() * self.noise_std(statistic, s, like).square()
        return a_ts, v_ts.clamp_min(0.0)

    def posterior(self, y_t, y0, t, s, statistic):
        """Mean and variance of q(y_s | y_t, y0) for s < t (the paper's Eqs. 13-14, per coordinate),
        in the gain form that stays finite at s = 0 (where it returns y0 with variance 0):

            var_s = s_s^2, var_t = a_ts^2 var_s + v_ts,
            mean = alpha(s) y0 + (a_ts var_s / var_t) (y_t - alpha(t) y0),   var = var_s v_ts / var_t.
        """
        a_ts, v_ts = self.transition(t, s, statistic, y_t)
        var_s = self.noise_std(statistic, s, y_t).square()
        var_t = a_ts.square() * var_s + v_ts
        mean = self.alpha(s, y_t) * y0 + (a_ts * var_s / var_t) * (y_t - self.alpha(t, y_t) * y0)
        return mean, (var_s * v_ts / var_t).expand_as(y_t)

    # --- the reference (isotropic) log-SNR, for time grids and importance sampling ----------------------
    def log_snr(self, t):
        """log(a^2 / b^2) of the reference VP schedule."""
        log_abar = self.schedule.log_abar(t)
        return log_abar - torch.log(-torch.expm1(log_abar))

    def time_of_log_snr(self, log_snr):
        """The inverse of ``log_snr``."""
        return self.schedule.time_of_log_abar(-torch.nn.functional.softplus(-log_snr))

    def log_snr_derivative(self, t):
        """d log_snr / dt = -beta / (1 - abar) < 0."""
        return -self.schedule.beta(t) / -torch.expm1(self.schedule.log_abar(t))

    # --- the public contract ----------------------------------------------------------------------------
    def marginal_prob(self, x0, t):
        """(mean, std) of the coordinates y_t = U^T x_t given x0: alpha U^T x0 and s(x0, t), both
        shaped like x0 (for the pixel basis: per pixel)."""
        check_images(x0, "x0")
        t = time_like(t, x0)
        std = self.noise_std(self.noise_statistic(x0), t, x0).expand_as(x0)
        return self.alpha(t, x0) * self.to_basis(x0), std

    def sde(self, x, t, x0):
        """(drift, diffusion) of the forward SDE at coordinates x, started from x0: f x and G(x0, t)."""
        check_images(x, "x")
        if x0.shape != x.shape:
            raise ValueError(f"x0 must have the shape of x {tuple(x.shape)}, got {tuple(x0.shape)}")
        t = time_like(t, x)
        self.check_continuous()
        diffusion = torch.sqrt(self.diffusion_sq(self.noise_statistic(x0), t, x))
        return self.drift_coef(t, x) * x, diffusion.expand_as(x)

    def perturb(self, x0, t, z):
        """x_t as pixels for a standard normal z (basis coordinates): U (alpha U^T x0 + s(x0, t) z)."""
        check_images(x0, "x0")
        t = time_like(t, x0)
        std = self.noise_std(self.noise_statistic(x0), t, x0)
        return self.from_basis(self.alpha(t, x0) * self.to_basis(x0) + std * z)

    def prior_sampling(self, shape, generator=None, device=None, dtype=None):
        """Samples of the prior N(0, I) at t = 1 (the same in every orthonormal basis)."""
        if generator is not None and device is None:
            device = generator.device
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    def prior_logp(self, z):
        """log N(z; 0, I) per sample, shape (B,)."""
        dims = z[0].numel()
        return -0.5 * dims * math.log(2 * math.pi) - 0.5 * z.flatten(1).square().sum(1)
