"""Score SDEs that are diagonal in a basis, and the edge-preserving process (paper_appendix/math.md, sections 2-3).

``SDE`` is the interface every sampler, loss and likelihood routine talks to. A process is

    x_t = U (alpha(t) * U^T x0 + s(x0, t) * z),   z ~ N(0, I),

with an orthonormal basis U and per-coordinate ``alpha`` and ``s``; in the coordinates
y = U^T x its forward SDE is diagonal,

    dy = f(t) y dt + G(x0, t) dW,   f = d log alpha / dt,   G^2 = d s^2/dt - 2 f s^2,

so that its marginals are exactly the ones above. ``EdgePreservingSDE`` (U = identity,
alpha = a(t), s = sigma(x0, t) per pixel) is the process of Vandersanden et al. (2024) in the
continuous-time form of their Appendix A; ``VPSDE`` is its isotropic special case (DDPM);
``sde_edge.processes.spectral`` holds the frequency-shaped baselines. Every std and diffusion here is
a tensor that broadcasts against the image: nothing assumes one scalar per image.
"""
import torch

from sde_edge.fields import Field, choice, number
from sde_edge.processes.base import SDE
from sde_edge.processes.direct_variance import DirectVarianceTable
from sde_edge.processes.edge_map import EDGE_CHANNELS, EDGE_NORMS, EDGE_PADDINGS, edge_map
from sde_edge.processes.registry import config_key, register_process
from sde_edge.processes.schedules import KAPPA_SCHEDULES, TRANSITIONS, EdgeSensitivity, TransitionFunction

__all__ = ["SDE", "EdgePreservingSDE", "VPSDE"]
VARIANTS = ("matched", "direct")


_DIRECT_TABLES = {}


def _direct_table_for(sde):
    """One table per distinct process config: building it takes a fraction of a second."""
    key = config_key(sde.config)
    if key not in _DIRECT_TABLES:
        _DIRECT_TABLES[key] = DirectVarianceTable(sde)
    return _DIRECT_TABLES[key]


@register_process
class EdgePreservingSDE(SDE):
    """The edge-preserving process x_t = a(t) x0 + sigma(x0, t) eps (paper_appendix/math.md, sections 2-3):
    the pixel basis, alpha = a(t), s = sigma(x0, t) = b(t) c(e(x0), t) per pixel.

    ``config`` is a ``config.diffusion`` ConfigDict (see ``sde_edge.config.default_diffusion``).
    """

    name = "edge"
    fields = {
        "tau": Field("linear", choice(TRANSITIONS), "the transition function; isotropic = DDPM"),
        "t_phi": Field(0.5, number(0, 1, low_open=True), "where the transition ends"),
        "tau_k": Field(10.0, number(0, low_open=True), "the sigmoid transition's steepness"),
        "kappa_min": Field(1e-4, number(0, low_open=True), "the edge sensitivity at t = 0"),
        "kappa_max": Field(1e-1, number(0, low_open=True), "the edge sensitivity at t_phi"),
        "kappa_schedule": Field("linear", choice(KAPPA_SCHEDULES), "kappa's growth over [0, t_phi]"),
        "edge_norm": Field("image", choice(EDGE_NORMS), "the edge map over each image's maximum or the batch's"),
        "edge_padding": Field("replicate", choice(EDGE_PADDINGS), "the Sobel filter's border"),
        "edge_channels": Field("sum", choice(EDGE_CHANNELS), "Sobel of the channel sum, or summed over channels"),
        "variant": Field("matched", choice(VARIANTS), "matched SDE or the direct per-step variance"),
    }

    @classmethod
    def check_config(cls, diffusion, prefix="diffusion"):
        super().check_config(diffusion, prefix)
        if diffusion.kappa_min > diffusion.kappa_max:
            raise ValueError(f"{prefix}.kappa_min must be <= {prefix}.kappa_max, got {diffusion.kappa_min!r} > "
                             f"{diffusion.kappa_max!r}")

    @classmethod
    def noise_depends_on(cls, diffusion):
        return diffusion.tau != "isotropic"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.tau_fn = TransitionFunction(c.tau, c.t_phi, c.tau_k)
        self.kappa = EdgeSensitivity(c.kappa_schedule, c.kappa_min, c.kappa_max, c.t_phi)
        self.variant = c.variant
        self.isotropic = c.tau == "isotropic"
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
    def alpha(self, t, like):
        return self.schedule.signal(t)

    def drift_coef(self, t, like):
        return -0.5 * self.schedule.beta(t)

    def edge_map(self, x0):
        """e(x0) in [0, 1], (B, 1, H, W) (zeros for tau = isotropic, which ignores it)."""
        if self.isotropic:
            return torch.zeros_like(x0[:, :1])
        c = self.config
        return edge_map(x0, norm=c.edge_norm, padding=c.edge_padding, channels=c.edge_channels)

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
            return self.schedule.noise(t)
        if self._direct_table is not None:
            return self.schedule.noise(t) * self._direct_table.effective_factor(statistic, t)
        return self.schedule.noise(t) * self.edge_factor(statistic, t)

    def diffusion_sq(self, statistic, t, like):
        """G^2. matched: d sigma^2/dt + beta sigma^2 = beta c^2 + b^2 dc^2/dt; direct: beta c^2."""
        self.check_continuous()
        beta = self.schedule.beta(t)
        if statistic is None:
            return beta
        if self.variant == "direct":
            return beta * self.edge_factor(statistic, t) ** 2
        c, c_sq_rate = self.edge_factor_and_sq_rate(statistic, t)
        return beta * c**2 + self.schedule.noise(t) ** 2 * c_sq_rate


class VPSDE(EdgePreservingSDE):
    """The VP-SDE (DDPM in continuous time): ``EdgePreservingSDE`` with tau = isotropic."""

    def __init__(self, config):
        isotropic = config.copy_and_resolve_references()
        isotropic.tau = "isotropic"
        super().__init__(isotropic)
