"""The reverse-time SDE and the probability-flow ODE (paper_appendix/math.md, section 3.4; Appendix A.2).

    dy = [f y - G(x0_hat, t)^2 s_theta(y, t)] dt + G(x0_hat, t) dW_bar
    dy/dt = f y - 0.5 G(x0_hat, t)^2 s_theta(y, t)

per coordinate of the process's basis. G depends on the unknown x0, so it is taken at the
model's own estimate x0_hat. Built from a ``Denoiser`` (the model bound to its SDE).
"""
from dataclasses import dataclass

import torch

from sde_edge.score import Denoised
from sde_edge.tensors import time_like


@dataclass
class ReverseStep:
    drift: torch.Tensor  # forward-time convention: y(t - dt) = y - drift dt + diffusion sqrt(dt) z
    diffusion: torch.Tensor  # per coordinate; zeros for the probability-flow ODE
    denoised: Denoised


class ReverseProcess:
    """``step(y, t)``: drift and diffusion of the reverse SDE (or ODE) at (y, t), and x0_hat."""

    def __init__(self, denoiser, probability_flow=False):
        denoiser.sde.check_continuous()
        self.denoiser, self.probability_flow = denoiser, probability_flow

    def step(self, y, t):
        sde = self.denoiser.sde
        denoised = self.denoiser(y, t)
        t = time_like(t, y)
        g_sq = sde.diffusion_sq(denoised.statistic, t, y)
        weight = 0.5 if self.probability_flow else 1.0
        drift = sde.drift_coef(t, y) * y - weight * g_sq * denoised.score
        diffusion = torch.zeros_like(y) if self.probability_flow else torch.sqrt(g_sq).expand_as(y)
        return ReverseStep(drift, diffusion, denoised)
