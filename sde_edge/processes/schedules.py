"""Time schedules of the edge-preserving process (paper_appendix/math.md, section 2).

Each schedule maps a time tensor ``t`` in [0, 1] to a tensor of the same shape
and also gives its analytic time derivative, which the matched SDE needs for
G^2 = d sigma^2/dt + beta sigma^2 (no finite differences anywhere).
"""
import math
from dataclasses import dataclass

import torch

TRANSITIONS = ("linear", "linear_ramp", "cosine", "sigmoid", "isotropic")
KAPPA_SCHEDULES = ("linear", "constant")


@dataclass(frozen=True)
class LinearBetaSchedule:
    """Linear VP schedule: beta(t) = N (beta_min + t (beta_max - beta_min)) (paper_appendix/math.md, section 2)."""

    num_steps: int
    beta_min: float
    beta_max: float

    def beta(self, t):
        return self.num_steps * (self.beta_min + t * (self.beta_max - self.beta_min))

    def log_abar(self, t):
        """log abar(t) = -(N beta_min t + N (beta_max - beta_min) t^2 / 2)."""
        n = self.num_steps
        return -(n * self.beta_min * t + 0.5 * n * (self.beta_max - self.beta_min) * t**2)

    def time_of_log_abar(self, log_abar):
        """Inverse of ``log_abar``: the t >= 0 with log abar(t) = log_abar (a quadratic in t)."""
        n = self.num_steps
        quadratic, linear = 0.5 * n * (self.beta_max - self.beta_min), n * self.beta_min
        return 2.0 * -log_abar / (linear + torch.sqrt(linear**2 + 4.0 * quadratic * -log_abar))

    def signal(self, t):
        """a(t) = sqrt(abar(t))."""
        return torch.exp(0.5 * self.log_abar(t))

    def noise(self, t):
        """b(t) = sqrt(1 - abar(t)), with expm1 so that small t keeps its precision."""
        return torch.sqrt(-torch.expm1(self.log_abar(t)))


@dataclass(frozen=True)
class TransitionFunction:
    """tau(t) in [0, 1], non-decreasing; tau = 1 is isotropic noise (paper_appendix/math.md, section 2)."""

    name: str
    t_phi: float
    steepness: float

    def __call__(self, t):
        if self.name == "linear":
            return torch.where(t < self.t_phi, t, torch.ones_like(t))
        if self.name == "linear_ramp":
            return torch.clamp(t / self.t_phi, max=1.0)
        if self.name == "cosine":
            return 0.5 * (1.0 - torch.cos(math.pi * t))
        if self.name == "sigmoid":
            return torch.sigmoid(self.steepness * (t - self.t_phi))
        return torch.ones_like(t)

    def derivative(self, t):
        """d tau / dt. For ``linear`` this is the regular part only; the jump at t_phi
        is a Dirac that no continuous-time method can integrate (see ``is_continuous``)."""
        if self.name == "linear":
            return torch.where(t < self.t_phi, torch.ones_like(t), torch.zeros_like(t))
        if self.name == "linear_ramp":
            return torch.where(t < self.t_phi, torch.full_like(t, 1.0 / self.t_phi), torch.zeros_like(t))
        if self.name == "cosine":
            return 0.5 * math.pi * torch.sin(math.pi * t)
        if self.name == "sigmoid":
            s = torch.sigmoid(self.steepness * (t - self.t_phi))
            return self.steepness * s * (1.0 - s)
        return torch.zeros_like(t)

    @property
    def is_continuous(self):
        return self.name != "linear"


@dataclass(frozen=True)
class EdgeSensitivity:
    """kappa(t): linear from kappa_min at t = 0 to kappa_max at t = t_phi, extrapolated
    linearly beyond; ``constant`` holds kappa_max for all t (paper_appendix/math.md, section 2)."""

    schedule: str
    kappa_min: float
    kappa_max: float
    t_phi: float

    @property
    def slope(self):
        if self.schedule == "constant":
            return 0.0
        return (self.kappa_max - self.kappa_min) / self.t_phi

    def __call__(self, t):
        if self.schedule == "constant":
            return torch.full_like(t, self.kappa_max)
        return self.kappa_min + self.slope * t

    def derivative(self, t):
        return torch.full_like(t, self.slope)
