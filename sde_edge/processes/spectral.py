"""The paper's baselines as processes diagonal in a frequency basis (paper_appendix/B_baselines.md
derives both SDEs; paper_appendix/math.md, section 3.3 summarises them).

Both share DDPM's reference schedule a(t), b(t) (``diffusion.num_steps``, ``beta_min``,
``beta_max``) and live in the orthonormal 2-D DCT (or real DFT, ``diffusion.basis``), where
coordinate k has radial frequency rho_k and Laplacian eigenvalue lambda_k = 4 pi^2 rho_k^2:

* ``BlurringSDE`` - blurring diffusion (Hoogeboom & Salimans 2023), inverse heat dissipation
  (Rissanen et al. 2023) with a N(0, I) prior: alpha_k(t) = a(t) d_k(t), s = b(t), with
  d_k(t) = (1 - d_min) exp(-lambda_k tau_B(t)) + d_min and tau_B(t) = sigma_B(t)^2 / 2,
  sigma_B(t) = blur_sigma_max sin^2(pi t / 2) (their blur schedule; d_min = blur_min_scale).
* ``BlueNoiseSDE`` - spectrally shaped noise in the spirit of BNDM (Huang et al. 2024): alpha = a(t),
  s_k(t)^2 = b(t)^2 P_k(t), P_k(t) = gamma(t) + (1 - gamma(t)) B_k, moving from a blue (high-pass)
  spectrum B_k (mean 1) to white as gamma = tau(t) goes from 0 to 1. BNDM mixes white noise with
  Cholesky-correlated blue noise; a stationary covariance is diagonal in the Fourier basis, so this
  is its exact diagonal form. B_k = floor + (1 - floor)(1 - exp(-(rho_k / cutoff)^2)), normalised.
"""
import math

import torch

from sde_edge.fields import Field, choice, number
from sde_edge.processes.bases import BASES, BASIS_NAMES
from sde_edge.processes.edge import SDE, EdgePreservingSDE
from sde_edge.processes.registry import register_process
from sde_edge.processes.schedules import TransitionFunction

BASIS = Field("dct", choice(BASIS_NAMES), "the frequency basis: dct or dft")


class _SpectralSDE(SDE):
    """A process whose coefficients are functions of each coordinate's frequency; cached per size."""

    def __init__(self, config):
        super().__init__(config)
        self.basis = BASES[self.config.basis]
        self._cache = {}

    @classmethod
    def noise_depends_on(cls, diffusion):
        return False

    def noise_statistic(self, x0):
        return None

    def _per_frequency(self, name, like, build):
        """``build(rho)`` on the (H, W) frequency grid of ``like``, cached per size, device and dtype."""
        key = (name, like.shape[-2], like.shape[-1], like.device, like.dtype)
        if key not in self._cache:
            rho = self.basis.frequencies(like.shape[-2], like.shape[-1])
            self._cache[key] = build(rho).to(device=like.device, dtype=like.dtype)
        return self._cache[key]


@register_process
class BlurringSDE(_SpectralSDE):
    """Blurring diffusion (see the module docstring): per-frequency signal decay, white noise."""

    name = "blur"
    fields = {
        "basis": BASIS,
        "blur_sigma_max": Field(20.0, number(0), "the largest blur, in pixels (Hoogeboom & Salimans' default)"),
        "blur_min_scale": Field(1e-3, number(0, 1, low_open=True, high_open=True),
                                "no frequency is damped below this fraction"),
    }

    def __repr__(self):
        c = self.config
        return f"BlurringSDE(basis={c.basis!r}, blur_sigma_max={c.blur_sigma_max}, N={c.num_steps})"

    def _eigenvalues(self, like):
        return self._per_frequency("lambda", like, lambda rho: 4 * math.pi**2 * rho**2)

    def blur_time(self, t):
        """tau_B(t) = blur_sigma_max^2 sin^4(pi t / 2) / 2, and its derivative."""
        sigma_max = self.config.blur_sigma_max
        sin, cos = torch.sin(0.5 * math.pi * t), torch.cos(0.5 * math.pi * t)
        return 0.5 * sigma_max**2 * sin**4, math.pi * sigma_max**2 * sin**3 * cos

    def frequency_scaling(self, t, like):
        """d_k(t) = (1 - d_min) exp(-lambda_k tau_B(t)) + d_min, shaped (B, 1, H, W)."""
        d_min = self.config.blur_min_scale
        return (1 - d_min) * torch.exp(-self._eigenvalues(like) * self.blur_time(t)[0]) + d_min

    def alpha(self, t, like):
        return self.schedule.signal(t) * self.frequency_scaling(t, like)

    def noise_std(self, statistic, t, like):
        return self.schedule.noise(t)

    def drift_coef(self, t, like):
        """f_k = d log a / dt + d log d_k / dt = -beta / 2 - (1 - d_min) lambda_k tau_B' exp(-lambda_k tau_B) / d_k."""
        d_min = self.config.blur_min_scale
        tau, dtau = self.blur_time(t)
        decay = torch.exp(-self._eigenvalues(like) * tau)
        scaling = (1 - d_min) * decay + d_min
        return -0.5 * self.schedule.beta(t) - (1 - d_min) * self._eigenvalues(like) * dtau * decay / scaling

    def diffusion_sq(self, statistic, t, like):
        """G_k^2 = d b^2/dt - 2 f_k b^2 = beta - 2 b^2 d log d_k / dt >= beta."""
        beta = self.schedule.beta(t)
        log_decay_rate = self.drift_coef(t, like) + 0.5 * beta
        return beta - 2 * self.schedule.noise(t) ** 2 * log_decay_rate


@register_process
class BlueNoiseSDE(_SpectralSDE):
    """Blue-to-white noise (see the module docstring): alpha = a(t), per-frequency noise power."""

    name = "bluenoise"
    fields = {
        "basis": BASIS,
        "tau": EdgePreservingSDE.fields["tau"],
        "t_phi": EdgePreservingSDE.fields["t_phi"],
        "tau_k": EdgePreservingSDE.fields["tau_k"],
        "bluenoise_cutoff": Field(0.25, number(0, low_open=True), "cycles per pixel below which blue is suppressed"),
        "bluenoise_floor": Field(0.1, number(0, 1, low_open=True), "the suppressed frequencies' relative power"),
    }

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.gamma = TransitionFunction(c.tau, c.t_phi, c.tau_k)
        if not self.gamma.is_continuous:
            self.discontinuities = (c.t_phi,)

    def __repr__(self):
        c = self.config
        return (f"BlueNoiseSDE(basis={c.basis!r}, tau={c.tau!r}, t_phi={c.t_phi}, cutoff={c.bluenoise_cutoff}, "
                f"N={c.num_steps})")

    def blue_spectrum(self, like):
        """B_k, (H, W), mean 1: the noise power of each frequency at t = 0."""

        def build(rho):
            c = self.config
            profile = c.bluenoise_floor + (1 - c.bluenoise_floor) * (1 - torch.exp(-(rho / c.bluenoise_cutoff) ** 2))
            spectrum = profile / profile.mean()
            self._check_monotone(spectrum)
            return spectrum

        return self._per_frequency("blue", like, build)

    def _check_monotone(self, spectrum):
        """s_k^2 / a^2 must never decrease (else G^2 < 0): check on a fine grid, in float64."""
        t = torch.linspace(self.t_eps, 1.0, 4001, dtype=torch.float64)
        peak = float(spectrum.max())
        power = self.gamma(t) + (1 - self.gamma(t)) * peak
        ratio = -torch.expm1(self.schedule.log_abar(t)) / torch.exp(self.schedule.log_abar(t)) * power
        if bool((ratio[1:] < ratio[:-1] * (1 - 1e-9)).any()):
            raise ValueError("diffusion.bluenoise_*: the high frequencies' noise falls faster than the schedule's "
                             "noise grows, so G^2 < 0; raise diffusion.bluenoise_floor or t_phi")

    def power(self, t, like):
        """P_k(t) = gamma(t) + (1 - gamma(t)) B_k, shaped (B, 1, H, W)."""
        gamma = self.gamma(t)
        return gamma + (1 - gamma) * self.blue_spectrum(like)

    def alpha(self, t, like):
        return self.schedule.signal(t)

    def noise_std(self, statistic, t, like):
        return self.schedule.noise(t) * self.power(t, like).sqrt()

    def drift_coef(self, t, like):
        return -0.5 * self.schedule.beta(t)

    def diffusion_sq(self, statistic, t, like):
        """G_k^2 = d (b^2 P_k)/dt + beta b^2 P_k = beta P_k + b^2 gamma' (1 - B_k)."""
        self.check_continuous()
        rate = self.gamma.derivative(t) * (1 - self.blue_spectrum(like))
        return self.schedule.beta(t) * self.power(t, like) + self.schedule.noise(t) ** 2 * rate
