"""Score SDEs that are diagonal in a basis, and the edge-preserving process (paper_appendix/math.md, sections 2-3).

``SDE`` is the interface every sampler, loss and likelihood routine talks to. A process is

    x_t = U (alpha(t) * U^T x0 + s(x0, t) * z),   z ~ N(0, I),

with an orthonormal basis U and per-coordinate ``alpha`` and ``s``; in the coordinates
y = U^T x its forward SDE is diagonal,

    dy = f(t) y dt + G(x0, t) dW,   f = d log alpha / dt,   G^2 = d s^2/dt - 2 f s^2,

so that its marginals are exactly the ones above. ``EdgePreservingSDE`` (U = identity,
alpha = a(t), s = sigma(x0, t) per pixel) is the process of Vandersanden et al. (2024) in the
continuous-time form of their Appendix A; ``VPSDE`` is its isotropic special case (DDPM);
``sde_edge.processes`` holds the frequency-shaped baselines. Every std and diffusion here is
a tensor that broadcasts against the image: nothing assumes one scalar per image.
"""
import abc
import math

import torch

from sde_edge.bases import IDENTITY
from sde_edge.config import validate_diffusion
from sde_edge.direct_variance import DirectVarianceTable
from sde_edge.edges import edge_map
from sde_edge.schedules import EdgeSensitivity, LinearBetaSchedule, TransitionFunction
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
    noise_depends_on_data = True  # s depends on x0 (False: s(t) alone, so a network may predict unscaled eps)

    def __init__(self, config):
        self.config = validate_diffusion(config.copy_and_resolve_references())  # later edits must not leak in
        c = self.config
        self.schedule = LinearBetaSchedule(c.num_steps, c.beta_min, c.beta_max)  # the reference a(t), b(t)
        self.t_eps = c.t_eps

    def __repr__(self):
        c = self.config
        return f"{type(self).__name__}(N={c.num_steps})"

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


_DIRECT_TABLES = {}


def _direct_table_for(sde):
    """One table per distinct schedule: building it takes a fraction of a second."""
    c = sde.config
    key = (c.num_steps, c.beta_min, c.beta_max, c.tau, c.t_phi, c.tau_k, c.kappa_min, c.kappa_max, c.kappa_schedule)
    if key not in _DIRECT_TABLES:
        _DIRECT_TABLES[key] = DirectVarianceTable(sde)
    return _DIRECT_TABLES[key]


class EdgePreservingSDE(SDE):
    """The edge-preserving process x_t = a(t) x0 + sigma(x0, t) eps (paper_appendix/math.md, sections 2-3):
    the pixel basis, alpha = a(t), s = sigma(x0, t) = b(t) c(e(x0), t) per pixel.

    ``config`` is a ``config.diffusion`` ConfigDict (see ``sde_edge.config.default_diffusion``).
    """

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.tau_fn = TransitionFunction(c.tau, c.t_phi, c.tau_k)
        self.kappa = EdgeSensitivity(c.kappa_schedule, c.kappa_min, c.kappa_max, c.t_phi)
        self.variant = c.variant
        self.isotropic = c.tau == "isotropic"
        self.noise_depends_on_data = not self.isotropic
        if self.variant == "matched" and not self.tau_fn.is_continuous:
            self.discontinuities = (c.t_phi,)
        self._direct_table = _direct_table_for(self) if self.variant == "direct" and not self.isotropic else None

    def __repr__(self):
        c = self.config
        return f"{type(self).__name__}(tau={c.tau!r}, variant={c.variant!r}, t_phi={c.t_phi}, N={c.num_steps})"

    def check_continuous(self):
        if not self.is_continuous:
            raise ValueError(
                "diffusion.tau='linear' makes sigma jump at t_phi, so the matched SDE has no continuous-time "
                "form there (G is a Dirac). Use diffusion.tau='linear_ramp' for SDE/ODE samplers and the "
                "likelihood, or the discrete samplers ('ddpm', 'ddim', 'dpmpp_2m') with tau='linear'."
            )

    # --- schedule math (paper_appendix/math.md, section 2) ---------------------------------------------------
    def signal_coef(self, t):
        """a(t) = sqrt(abar(t))."""
        return self.schedule.signal(t)

    def noise_coef(self, t):
        """b(t) = sqrt(1 - abar(t)), the isotropic noise level."""
        return self.schedule.noise(t)

    def alpha(self, t, like):
        return self.schedule.signal(t)

    def drift_coef(self, t, like):
        return -0.5 * self.schedule.beta(t)

    def edge_map(self, x0):
        """e(x0) in [0, 1], (B, 1, H, W) (zeros for tau = isotropic, which ignores it)."""
        if self.isotropic:
            return torch.zeros_like(x0[:, :1])
        return edge_map(x0, norm=self.config.edge_norm, padding=self.config.edge_padding)

    def noise_statistic(self, x0):
        return None if self.isotropic else self.edge_map(x0)  # plain DDPM pays for no Sobel

    def edge_factor(self, e, t):
        """c(x0, t) = 1 / ((1 - tau) sqrt(1 + e / kappa) + tau), in (0, 1]."""
        tau = self.tau_fn(t)
        return 1.0 / ((1.0 - tau) * torch.sqrt(1.0 + e / self.kappa(t)) + tau)

    def edge_factor_and_sq_rate(self, e, t):
        """c and d c^2 / dt, analytic (A_sde.md, A.2): d c^2/dt = -2 c^3 dD/dt with D = 1 / c."""
        tau, dtau = self.tau_fn(t), self.tau_fn.derivative(t)
        kappa, dkappa = self.kappa(t), self.kappa.derivative(t)
        root = torch.sqrt(1.0 + e / kappa)
        droot = -e * dkappa / (2.0 * kappa**2 * root)
        c = 1.0 / ((1.0 - tau) * root + tau)
        d_denominator = dtau * (1.0 - root) + (1.0 - tau) * droot
        return c, -2.0 * c**3 * d_denominator

    # --- per-pixel noise ------------------------------------------------------------------------------
    def noise_std(self, statistic, t, like):
        """sigma = b(t) c(e, t) (matched) or b(t) c_eff(e, t) from the direct variant's table."""
        if statistic is None:
            return self.noise_coef(t)
        if self._direct_table is not None:
            return self.noise_coef(t) * self._direct_table.effective_factor(statistic, t)
        return self.noise_coef(t) * self.edge_factor(statistic, t)

    def diffusion_sq(self, statistic, t, like):
        """G^2. matched: d sigma^2/dt + beta sigma^2 = beta c^2 + b^2 dc^2/dt; direct: beta c^2."""
        self.check_continuous()
        beta = self.schedule.beta(t)
        if statistic is None:
            return beta
        if self.variant == "direct":
            return beta * self.edge_factor(statistic, t) ** 2
        c, c_sq_rate = self.edge_factor_and_sq_rate(statistic, t)
        return beta * c**2 + self.noise_coef(t) ** 2 * c_sq_rate


class VPSDE(EdgePreservingSDE):
    """The VP-SDE (DDPM in continuous time): ``EdgePreservingSDE`` with tau = isotropic."""

    def __init__(self, config):
        isotropic = config.copy_and_resolve_references()
        isotropic.tau = "isotropic"
        super().__init__(isotropic)
