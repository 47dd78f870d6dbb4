"""Per-pixel weighted score matching (SPEC section 4, Appendix A.1).

With the score written through the predicted noise n (and sigma of the true x0),

    lambda * (s_theta - grad log p(x_t | x0))^2 = omega * (n_hat - sigma eps)^2,   omega = lambda / sigma^4,

per pixel. ``per_pixel_loss`` returns that tensor unreduced (as EDM's loss does);
``reduce_loss`` sums or averages it.

weighting    lambda      omega          what it is
paper        sigma^4     1              the paper's Eq. 15 (the public code's loss)
variance     sigma^2     1 / sigma^2    Eq. 18: the inverse of E[score^2], per pixel
likelihood   G^2         G^2 / sigma^4  maximum likelihood (Song et al. 2021)

The likelihood weighting samples t by importance: the proposal is the isotropic
likelihood weight, p(t) proportional to beta(t) / (1 - abar(t)) = g^2 / b^2 of the VP-SDE,
on [t_eps, 1] (on the grid t = i / (N - 1), i >= 1, in discrete time). Its
inverse CDF is closed-form: with u = -log abar, the integral of du / (1 - e^-u) is
log(e^u - 1). Each sample carries the weight uniform density / p(t), so the
estimate has the expectation of the uniform-t one and a bounded variance:
G^2 / sigma^2 >= beta / b^2 for every tau (A_sde.md, A.3), but not by much.
"""
import torch

from sde_edge.score import noise_and_x0, parameterization_of
from sde_edge.sde import time_like

WEIGHTINGS = ("paper", "variance", "likelihood")
TIME_SAMPLINGS = ("continuous", "discrete")


def _log_expm1(u):
    return u + torch.log(-torch.expm1(-u))


def likelihood_proposal_log_density(sde, t):
    """log p(t) of the continuous importance proposal on [t_eps, 1]."""
    t0, t1 = torch.tensor([sde.t_eps, 1.0], dtype=t.dtype, device=t.device)
    normaliser = _log_expm1(-sde.log_abar(t1)) - _log_expm1(-sde.log_abar(t0))
    return torch.log(sde.beta(t)) - torch.log(-torch.expm1(sde.log_abar(t))) - torch.log(normaliser)


def sample_times(sde, batch_size, *, time_sampling="continuous", weighting="paper", generator=None, device=None, dtype=torch.float32):
    """Training times t (B,) and their importance weights (B,): ones unless weighting = likelihood."""
    if time_sampling not in TIME_SAMPLINGS:
        raise ValueError(f"training.time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"training.weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    uniform = torch.rand(batch_size, generator=generator, device=device, dtype=dtype)
    if time_sampling == "discrete":
        n = sde.num_steps
        grid = torch.arange(1, n, device=device, dtype=dtype) / (n - 1)
        if weighting != "likelihood":
            return grid[(uniform * (n - 1)).long().clamp(max=n - 2)], torch.ones_like(uniform)
        proposal = sde.beta(grid) / -torch.expm1(sde.log_abar(grid))
        proposal = proposal / proposal.sum()
        index = torch.searchsorted(proposal.cumsum(0), uniform).clamp(max=n - 2)
        return grid[index], 1.0 / ((n - 1) * proposal[index])
    if weighting != "likelihood":
        return sde.t_eps + (1.0 - sde.t_eps) * uniform, torch.ones_like(uniform)
    u0, u1 = (-sde.log_abar(torch.tensor(v, dtype=dtype, device=device)) for v in (sde.t_eps, 1.0))
    log_expm1_u = _log_expm1(u0) + uniform * (_log_expm1(u1) - _log_expm1(u0))
    u = torch.nn.functional.softplus(log_expm1_u)  # inverse of log(e^u - 1)
    t = sde.schedule.time_of_log_abar(-u).clamp(sde.t_eps, 1.0)
    weight = 1.0 / ((1.0 - sde.t_eps) * likelihood_proposal_log_density(sde, t).exp())
    return t, weight


def pixel_weights(sde, weighting, edges, t, std):
    """omega(x0, t) per pixel for each weighting (see the module docstring); edges = e(x0), t (B, 1, 1, 1)."""
    if weighting == "paper":
        return torch.ones_like(std)
    if weighting == "variance":
        return 1.0 / std.square()
    return sde.diffusion_sq_from_edges(edges, t) / std.square().square()


def per_pixel_loss(model, sde, x0, t, eps, *, weighting="paper", importance=None):
    """omega * (n_hat - sigma eps)^2 per pixel at x_t = a(t) x0 + sigma(x0, t) eps, times the
    importance weight of t (from ``sample_times``) when given. t: (B,); eps shaped like x0."""
    tb = time_like(t, x0)
    edges = sde.edge_map(x0)  # once: sigma and, for the likelihood weighting, G^2 both need it
    std = sde.std_from_edges(edges, tb).expand_as(x0)
    x_t = sde.signal_coef(tb) * x0 + std * eps
    output = model(x_t, tb.reshape(-1))
    noise, _ = noise_and_x0(output, sde, x_t, tb, parameterization_of(model))
    loss = pixel_weights(sde, weighting, edges, tb, std) * (noise - std * eps).square()
    return loss if importance is None else loss * time_like(importance, x0)


def random_loss(model, sde, x0, *, weighting="paper", time_sampling="continuous", reduce_mean=False, generator=None):
    """The reduced training loss at freshly drawn t and eps: a scalar."""
    t, importance = sample_times(
        sde, x0.shape[0], time_sampling=time_sampling, weighting=weighting, generator=generator, device=x0.device, dtype=x0.dtype
    )
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return reduce_loss(per_pixel_loss(model, sde, x0, t, eps, weighting=weighting, importance=importance), reduce_mean)


def reduce_loss(per_pixel, reduce_mean=False):
    """Sum (or mean) over pixels, mean over the batch: a scalar."""
    per_sample = per_pixel.flatten(1)
    return (per_sample.mean(1) if reduce_mean else per_sample.sum(1)).mean()
