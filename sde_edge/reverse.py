"""The reverse-time SDE and the probability-flow ODE (SPEC section 3, Appendix A.2).

    dX = [f X - G(x0_hat, t)^2 s_theta(X, t)] dt + G(x0_hat, t) dW_bar
    dX/dt = f X - 0.5 G(x0_hat, t)^2 s_theta(X, t)

G depends on the unknown x0, so it is taken at the model's own estimate x0_hat.
"""
from dataclasses import dataclass

import torch

from sde_edge.score import Denoised, denoise
from sde_edge.sde import time_like


@dataclass
class ReverseStep:
    drift: torch.Tensor  # forward-time convention: x(t - dt) = x - drift dt + diffusion sqrt(dt) z
    diffusion: torch.Tensor  # per pixel; zeros for the probability-flow ODE
    denoised: Denoised


class ReverseSDE:
    def __init__(self, sde, model, probability_flow=False):
        sde.check_continuous()
        self.forward_sde, self.model, self.probability_flow = sde, model, probability_flow

    def sde(self, x, t):
        """Drift and diffusion of the reverse SDE (or ODE) at (x, t), and the model's x0_hat."""
        sde = self.forward_sde
        denoised = denoise(self.model, sde, x, t)
        t = time_like(t, x)
        g_sq = sde.diffusion_sq_from_edges(denoised.edges, t)
        weight = 0.5 if self.probability_flow else 1.0
        drift = sde.drift_coef(t) * x - weight * g_sq * denoised.score
        diffusion = torch.zeros_like(x) if self.probability_flow else torch.sqrt(g_sq).expand_as(x)
        return ReverseStep(drift, diffusion, denoised)
