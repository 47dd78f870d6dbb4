"""Score SDEs with per-pixel noise (SPEC sections 2, 3 and 8).

``SDE`` is the abstract interface every sampler, loss and likelihood routine
talks to. ``EdgePreservingSDE`` is the edge-preserving process of
Vandersanden et al. (2024) in the continuous-time form of their Appendix A;
``VPSDE`` is its isotropic special case. Every std and diffusion returned here
is a tensor shaped like the image: nothing assumes one scalar per image.
"""
import abc
import math

import torch

from sde_edge.config import validate_diffusion
from sde_edge.direct_variance import DirectVarianceTable
from sde_edge.edges import edge_map
from sde_edge.schedules import EdgeSensitivity, LinearBetaSchedule, Transition


def time_like(t, x):
    """Turn ``t`` (a number, or a tensor of B times shaped (B,) or (B, 1, 1, 1)) into shape
    (B, 1, 1, 1) in x's dtype and device."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    batch_shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    if t.dim() == 0:
        return t.expand(batch_shape)
    if t.shape not in (batch_shape, batch_shape[:1]):
        raise ValueError(f"t must be a number or a tensor of shape ({x.shape[0]},) to match x, got shape {tuple(t.shape)}")
    return t.reshape(batch_shape)


def _check_images(x, name):
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got shape {tuple(x.shape)}")


class SDE(abc.ABC):
    """dX = f(t) X dt + G(x0, t) dW on images, with marginals N(mean(x0, t), diag std^2)."""

    t_eps = 1e-3

    @abc.abstractmethod
    def marginal_prob(self, x0, t):
        """(mean, std) of p(x_t | x0); std is per pixel, shaped like x0."""

    @abc.abstractmethod
    def sde(self, x, t, x0):
        """(drift, diffusion) of the forward SDE; diffusion per pixel, shaped like x."""

    @abc.abstractmethod
    def edge_map(self, x0):
        """The image statistic the noise depends on, (B, 1, H, W)."""

    @abc.abstractmethod
    def std_from_edges(self, e, t):
        """sigma(x0, t) given e = edge_map(x0), (B, 1, H, W); t of shape (B, 1, 1, 1)."""

    @abc.abstractmethod
    def diffusion_sq_from_edges(self, e, t):
        """G(x0, t)^2 given e = edge_map(x0); t of shape (B, 1, 1, 1)."""

    @abc.abstractmethod
    def signal_coef(self, t):
        """a(t), the mean coefficient: mean = a(t) x0."""

    @abc.abstractmethod
    def drift_coef(self, t):
        """f(t) in the linear drift f(t) X."""

    def check_continuous(self):
        """Raise if the SDE has no continuous-time form (a jump in sigma)."""

    def prior_sampling(self, shape, generator=None, device=None, dtype=None):
        """Samples of the prior N(0, I) at t = 1."""
        if generator is not None and device is None:
            device = generator.device
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    def prior_logp(self, z):
        """log N(z; 0, I) per sample, shape (B,)."""
        dims = z[0].numel()
        return -0.5 * dims * math.log(2 * math.pi) - 0.5 * z.flatten(1).square().sum(1)

    def reverse(self, model, probability_flow=False):
        """The reverse-time SDE (or the probability-flow ODE) driven by ``model`` (SPEC section 3)."""
        from sde_edge.reverse import ReverseSDE

        return ReverseSDE(self, model, probability_flow)


_DIRECT_TABLES = {}


def _direct_table_for(sde):
    """One table per distinct schedule: building it takes a fraction of a second."""
    c = sde.config
    key = (c.num_steps, c.beta_min, c.beta_max, c.tau, c.t_phi, c.tau_k, c.kappa_min, c.kappa_max, c.kappa_schedule)
    if key not in _DIRECT_TABLES:
        _DIRECT_TABLES[key] = DirectVarianceTable(sde)
    return _DIRECT_TABLES[key]


class EdgePreservingSDE(SDE):
    """The edge-preserving process x_t = a(t) x0 + sigma(x0, t) eps as an SDE (SPEC sections 2-3).

    ``config`` is a ``config.diffusion`` ConfigDict (see ``sde_edge.config.default_diffusion``).
    """

    def __init__(self, config):
        self.config = validate_diffusion(config.copy_and_resolve_references())  # later edits must not leak in
        self.schedule = LinearBetaSchedule(config.num_steps, config.beta_min, config.beta_max)
        self.transition = Transition(config.tau, config.t_phi, config.tau_k)
        self.kappa = EdgeSensitivity(config.kappa_schedule, config.kappa_min, config.kappa_max, config.t_phi)
        self.variant = config.variant
        self.t_eps = config.t_eps
        self._direct_table = _direct_table_for(self) if self.variant == "direct" else None

    def __repr__(self):
        c = self.config
        return f"{type(self).__name__}(tau={c.tau!r}, variant={c.variant!r}, t_phi={c.t_phi}, N={c.num_steps})"

    @property
    def num_steps(self):
        return self.config.num_steps

    # --- schedule math (SPEC section 2) ----------------------------------------
    def beta(self, t):
        return self.schedule.beta(t)

    def log_abar(self, t):
        return self.schedule.log_abar(t)

    def signal_coef(self, t):
        return self.schedule.signal(t)

    def noise_coef(self, t):
        """b(t) = sqrt(1 - abar(t)), the isotropic noise level."""
        return self.schedule.noise(t)

    def drift_coef(self, t):
        return -0.5 * self.beta(t)

    def tau(self, t):
        return self.transition(t)

    def edge_map(self, x0):
        if self.transition.name == "isotropic":  # c = 1 whatever e is: plain DDPM pays for no Sobel
            return torch.zeros_like(x0[:, :1])
        return edge_map(x0, norm=self.config.edge_norm, padding=self.config.edge_padding)

    def edge_factor(self, e, t):
        """c(x0, t) = 1 / ((1 - tau) sqrt(1 + e / kappa) + tau), in (0, 1]."""
        tau = self.transition(t)
        return 1.0 / ((1.0 - tau) * torch.sqrt(1.0 + e / self.kappa(t)) + tau)

    def edge_factor_and_sq_rate(self, e, t):
        """c and d c^2 / dt, analytic (A_sde.md, A.2): d c^2/dt = -2 c^3 dD/dt with D = 1 / c."""
        tau, dtau = self.transition(t), self.transition.derivative(t)
        kappa, dkappa = self.kappa(t), self.kappa.derivative(t)
        root = torch.sqrt(1.0 + e / kappa)
        droot = -e * dkappa / (2.0 * kappa**2 * root)
        c = 1.0 / ((1.0 - tau) * root + tau)
        d_denominator = dtau * (1.0 - root) + (1.0 - tau) * droot
        return c, -2.0 * c**3 * d_denominator

    # --- per-pixel noise ---------------------------------------------------------
    def std_from_edges(self, e, t):
        if self._direct_table is not None:
            return self.noise_coef(t) * self._direct_table.effective_factor(e, t)
        return self.noise_coef(t) * self.edge_factor(e, t)

    def diffusion_sq_from_edges(self, e, t):
        """G^2. matched: d sigma^2/dt + beta sigma^2 = beta c^2 + b^2 dc^2/dt; direct: beta c^2."""
        self.check_continuous()
        if self.variant == "direct":
            return self.beta(t) * self.edge_factor(e, t) ** 2
        c, c_sq_rate = self.edge_factor_and_sq_rate(e, t)
        return self.beta(t) * c**2 + self.noise_coef(t) ** 2 * c_sq_rate

    def check_continuous(self):
        if self.variant == "matched" and not self.transition.is_continuous:
            raise ValueError(
                "diffusion.tau='linear' makes sigma jump at t_phi, so the matched SDE has no continuous-time "
                "form there (G is a Dirac). Use diffusion.tau='linear_ramp' for SDE/ODE samplers and the "
                "likelihood, or the discrete samplers ('ddpm', 'ddim') with tau='linear'."
            )

    def posterior(self, x_t, x0, t, s, edges):
        """Mean and variance of q(x_s | x_t, x0) for s < t, per pixel, with sigmas taken at
        ``edges`` (SPEC section 5, the paper's Eqs. 13-14); t and s are 0-d or (B, 1, 1, 1).

            a_ts = a(t) / a(s),  v_ts = sigma_t^2 - a_ts^2 sigma_s^2,
            var = 1 / (1 / sigma_s^2 + a_ts^2 / v_ts),  mean = var (a_ts / v_ts x_t + a(s) / sigma_s^2 x0)
        """
        a_ts = self.signal_coef(t) / self.signal_coef(s)
        var_t = self.std_from_edges(edges, t).square()
        var_s = self.std_from_edges(edges, s).square()
        var_ts = (var_t - a_ts**2 * var_s).clamp_min(torch.finfo(x_t.dtype).tiny)
        var = 1.0 / (1.0 / var_s + a_ts**2 / var_ts)
        mean = var * (a_ts / var_ts * x_t + self.signal_coef(s) / var_s * x0)
        return mean, var.expand_as(x_t)

    # --- public contract (SPEC section 8) ----------------------------------------
    def std(self, x0, t):
        """sigma(x0, t), per pixel and shaped like x0."""
        _check_images(x0, "x0")
        return self.std_from_edges(self.edge_map(x0), time_like(t, x0)).expand_as(x0)

    def marginal_prob(self, x0, t):
        _check_images(x0, "x0")
        t = time_like(t, x0)
        std = self.std_from_edges(self.edge_map(x0), t).expand_as(x0)
        return self.signal_coef(t) * x0, std

    def sde(self, x, t, x0):
        _check_images(x, "x")
        if x0.shape != x.shape:
            raise ValueError(f"x0 must have the shape of x {tuple(x.shape)}, got {tuple(x0.shape)}")
        t = time_like(t, x)
        diffusion = torch.sqrt(self.diffusion_sq_from_edges(self.edge_map(x0), t))
        return self.drift_coef(t) * x, diffusion.expand_as(x)


class VPSDE(EdgePreservingSDE):
    """The VP-SDE (DDPM in continuous time): ``EdgePreservingSDE`` with tau = isotropic."""

    def __init__(self, config):
        isotropic = config.copy_and_resolve_references()
        isotropic.tau = "isotropic"
        super().__init__(isotropic)
