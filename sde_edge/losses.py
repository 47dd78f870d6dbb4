"""Per-pixel weighted score matching (paper_appendix/math.md, section 4; Appendix A.1 of the paper).

With the score written through the predicted noise n (and sigma of the true x0),

    lambda * (s_theta - grad log p(x_t | x0))^2 = omega * (n_hat - sigma eps)^2,   omega = lambda / sigma^4,

per coordinate of the process's basis (pixels, for the edge process). ``ScoreMatchingLoss``
is configured once from ``config.training`` (as EDM's loss classes); ``per_pixel`` returns
the unreduced tensor and ``reduce`` sums or averages it.

weighting    lambda      omega          what it is
paper        sigma^4     1              the paper's Eq. 15 (the public code's loss)
variance     sigma^2     1 / sigma^2    Eq. 18: the inverse of E[score^2], per pixel
likelihood   G^2         G^2 / sigma^4  maximum likelihood (Song et al. 2021)

The likelihood weighting samples t by importance: the proposal is the isotropic
likelihood weight, p(t) proportional to beta(t) / (1 - abar(t)) = -d logSNR / dt of the
reference VP schedule, i.e. uniform in the log-SNR on [t_eps, 1] (in discrete time: the
same weight on the grid t = i / (N - 1), i >= 1). Each sample carries the weight
uniform density / p(t), so the estimate has the expectation of the uniform-t one and a
bounded variance: G^2 / sigma^2 >= beta / b^2 for every tau (A_sde.md, A.3), but not by much.
"""
import torch

from sde_edge.score import Denoiser
from sde_edge.tensors import time_like

WEIGHTINGS = ("paper", "variance", "likelihood")
TIME_SAMPLINGS = ("continuous", "discrete")


def noised(sde, x0, t, eps):
    """(t as (B, 1, 1, 1), the statistic of x0, s(x0, t), y_t = a(t) U^T x0 + s(x0, t) eps): the
    forward draw a training loss sees; t (B,), eps shaped like x0, in the process's basis."""
    tb = time_like(t, x0)
    statistic = sde.noise_statistic(x0)  # once: sigma and, for the likelihood weighting, G^2 both need it
    std = sde.noise_std(statistic, tb, x0).expand_as(x0)
    return tb, statistic, std, sde.alpha(tb, x0) * sde.to_basis(x0) + std * eps


class ScoreMatchingLoss:
    """The training loss of one process: weighting, time sampling and reduction fixed at construction."""

    def __init__(self, sde, weighting="paper", time_sampling="continuous", reduce_mean=False):
        if weighting not in WEIGHTINGS:
            raise ValueError(f"training.weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"training.time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
        if weighting == "likelihood":
            sde.check_continuous()  # G^2 has a Dirac where sigma jumps
        self.sde, self.weighting, self.time_sampling, self.reduce_mean = sde, weighting, time_sampling, reduce_mean

    @classmethod
    def from_config(cls, training_config, sde):
        t = training_config
        return cls(sde, t.weighting, t.time_sampling, t.reduce_mean)

    # --- times ---------------------------------------------------------------------------------
    def proposal_log_density(self, t):
        """log p(t) of the continuous likelihood proposal: -logSNR'(t) / (logSNR(t_eps) - logSNR(1))."""
        sde = self.sde
        ends = torch.tensor([sde.t_eps, 1.0], dtype=t.dtype, device=t.device)
        span = sde.log_snr(ends[0]) - sde.log_snr(ends[1])
        return torch.log(-sde.log_snr_derivative(t)) - torch.log(span)

    def sample_times(self, batch_size, *, generator=None, device=None, dtype=torch.float32):
        """Training times t (B,) and their importance weights (B,): ones unless weighting = likelihood."""
        sde = self.sde
        uniform = torch.rand(batch_size, generator=generator, device=device, dtype=dtype)
        likelihood = self.weighting == "likelihood"
        if self.time_sampling == "discrete":
            n = sde.num_steps
            grid = torch.arange(1, n, device=device, dtype=dtype) / (n - 1)
            if not likelihood:
                return grid[(uniform * (n - 1)).long().clamp(max=n - 2)], torch.ones_like(uniform)
            proposal = -sde.log_snr_derivative(grid)
            proposal = proposal / proposal.sum()
            index = torch.searchsorted(proposal.cumsum(0), uniform).clamp(max=n - 2)
            return grid[index], 1.0 / ((n - 1) * proposal[index])
        if not likelihood:
            return sde.t_eps + (1.0 - sde.t_eps) * uniform, torch.ones_like(uniform)
        ends = torch.tensor([sde.t_eps, 1.0], dtype=dtype, device=device)
        high, low = sde.log_snr(ends[0]), sde.log_snr(ends[1])
        t = sde.time_of_log_snr(high + uniform * (low - high)).clamp(sde.t_eps, 1.0)
        return t, 1.0 / ((1.0 - sde.t_eps) * self.proposal_log_density(t).exp())

    # --- the loss ------------------------------------------------------------------------------
    def coordinate_weights(self, statistic, t, std):
        """omega(x0, t) per coordinate (see the module docstring); t (B, 1, 1, 1)."""
        if self.weighting == "paper":
            return torch.ones_like(std)
        if self.weighting == "variance":
            return 1.0 / std.square()
        return self.sde.diffusion_sq(statistic, t, std) / std.square().square()

    def per_pixel(self, model, x0, t, eps, importance=None):
        """omega * (n_hat - sigma eps)^2 per coordinate at x_t = a(t) x0 + sigma(x0, t) eps (in the
        process's basis), times the importance weight of t when given. t: (B,); eps shaped like x0."""
        sde = self.sde
        tb, statistic, std, y_t = noised(sde, x0, t, eps)
        noise = Denoiser(model, sde).noise_in_basis(y_t, tb)
        loss = self.coordinate_weights(statistic, tb, std) * (noise - std * eps).square()
        return loss if importance is None else loss * time_like(importance, x0)

    def reduce(self, per_pixel):
        """Sum (or mean) over pixels, mean over the batch: a scalar."""
        per_sample = per_pixel.flatten(1)
        return (per_sample.mean(1) if self.reduce_mean else per_sample.sum(1)).mean()

    def __call__(self, model, x0, t, eps, importance=None):
        return self.reduce(self.per_pixel(model, x0, t, eps, importance))
