"""Likelihoods in bits per dimension (SPEC section 6): the probability-flow ODE and the
per-pixel variational bound (the paper's Appendix D, written out in paper_appendix/D_bound.md).

Data lives on 256 levels scaled to [-1, 1]: level k is the bin [2k/256 - 1, 2(k+1)/256 - 1),
whose lattice point is 2k/255 - 1 (what ``x * 127.5 + 127.5`` rounds back to k).
"""
import math
import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from sde_edge.odeint import integrate
from sde_edge.sampling.grids import time_grid
from sde_edge.score import denoise

LEVELS = 256
BIN_WIDTH = 2.0 / LEVELS
# A bin is 2/256 = 2^-7 wide per dimension, so -log2 P(bin) = -log2 p(x) + 7 per dimension.
BPD_OFFSET = -math.log2(BIN_WIDTH)
MAX_EXACT_DIMS = 1024
TRACES = ("hutchinson", "exact")
PROBES = ("rademacher", "gaussian")


def check_images(x, name="x"):
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or inf values")
    low, high = x.min().item(), x.max().item()
    if low < -1 - 1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{name} must be scaled to [-1, 1] (256 levels); its values span [{low:.3g}, {high:.3g}]")


def quantize(x):
    """The level k in {0, ..., 255} of each pixel of x in [-1, 1]."""
    return torch.round((x + 1.0) * (LEVELS - 1) / 2.0).clamp(0, LEVELS - 1)


def uniform_dequantize(x, generator=None):
    """Uniform dequantisation: a uniform point of each pixel's bin."""
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (quantize(x) + noise) * BIN_WIDTH - 1.0


@dataclass
class ODELikelihood:
    bpd: torch.Tensor  # (B,)
    log_likelihood: torch.Tensor  # (B,) nats: log p of the (dequantised) input under the ODE model
    prior_logp: torch.Tensor  # (B,) log N(z; 0, I)
    delta_logp: torch.Tensor  # (B,) integral of div F from t_eps to 1
    z: torch.Tensor  # the latent at t = 1
    nfe: int


def _divergence(drift, x, trace, probes):
    if trace == "hutchinson":
        (vjp,) = torch.autograd.grad((drift * probes).sum(), x)
        return (vjp * probes).flatten(1).sum(1)
    flat_drift = drift.flatten(1)
    diagonal = torch.zeros_like(flat_drift)
    for i in range(flat_drift.shape[1]):
        (row,) = torch.autograd.grad(flat_drift[:, i].sum(), x, retain_graph=True)
        diagonal[:, i] = row.flatten(1)[:, i]
    return diagonal.sum(1)


def ode_bpd(model, sde, x, *, trace="hutchinson", probe="rademacher", rtol=1e-5, atol=1e-5, dequantize=True,
            generator=None, max_nfe=20_000, method="RK45", progress=False):
    """-log p(x) in bits/dim under the probability-flow ODE: log p_0(x) = log N(x_1; 0, I) +
    integral_{t_eps}^1 div F dt, with F the ODE drift (exact trace or Hutchinson-Skilling).

    Samples must not interact: ``edge_norm='batch'`` is refused (its edge map couples the batch).
    """
    check_images(x)
    sde.check_continuous()
    if trace not in TRACES or probe not in PROBES:
        raise ValueError(f"trace must be one of {TRACES} and probe one of {PROBES}, got {trace!r}, {probe!r}")
    if sde.config.edge_norm == "batch":
        raise ValueError("diffusion.edge_norm='batch' makes each image's noise depend on the batch; "
                         "likelihoods need edge_norm='image'")
    dims = x[0].numel()
    if trace == "exact" and dims > MAX_EXACT_DIMS:
        raise ValueError(f"trace='exact' costs one backward pass per dimension; D = {dims} > {MAX_EXACT_DIMS}: "
                         "use trace='hutchinson'")
    if not dequantize:
        warnings.warn("dequantize=False: this is the bpd of a continuous density at discrete data points, "
                      "which is not a bound on the discrete NLL and can be negative", stacklevel=2)
    start = uniform_dequantize(x, generator) if dequantize else x
    probes = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if probe == "rademacher":
        probes = probes.sign()
    reverse = sde.reverse(model, probability_flow=True)

    def rhs(state, t):
        with torch.enable_grad():
            xt = state[:, :dims].reshape(x.shape).detach().requires_grad_(True)
            drift = reverse.sde(xt, t).drift
            divergence = _divergence(drift, xt, trace, probes)
        return torch.cat([drift.detach().flatten(1), divergence.detach()[:, None]], dim=1)

    state = torch.cat([start.flatten(1), torch.zeros_like(start[:, :1, 0, 0])], dim=1)
    end, nfe = integrate(rhs, state, sde.t_eps, 1.0, rtol=rtol, atol=atol, method=method, max_nfe=max_nfe,
                         progress=progress, desc="ode likelihood")
    z = end[:, :dims].reshape(x.shape)
    prior_logp = sde.prior_logp(z)
    log_likelihood = prior_logp + end[:, dims]
    return ODELikelihood(-log_likelihood / (dims * math.log(2)) + BPD_OFFSET, log_likelihood, prior_logp, end[:, dims], z, nfe)


@dataclass
class BoundResult:
    bpd: torch.Tensor  # (B,) the bound, L_T + sum KL + L_0, in bits/dim
    terms: dict  # 'prior', 'kl', 'decoder': (B,) in bits/dim; 'kl_per_step': (B, steps - 1) in bits/dim
    times: torch.Tensor  # the grid, t_K = 1 > ... > t_0 = 0


def gaussian_kl(mean_q, var_q, mean_p, var_p):
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) per pixel."""
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p).square()) / var_p - 1.0)


def log_normal_mass(low, high, mean, std):
    """log of the N(mean, std^2) mass of [low, high), stable in both tails (float64)."""
    a, b = (low - mean) / std, (high - mean) / std
    upper_tail = a > 0  # reflect so that we always subtract the smaller CDF value
    a, b = torch.where(upper_tail, -b, a), torch.where(upper_tail, -a, b)
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log1p(-torch.exp(log_a - log_b).clamp(max=1.0 - 1e-16))


def decoder_log_likelihood(x, mean, std):
    """log P(level of x) per pixel under a Gaussian discretised to the 256 bins; the outer
    bins extend to -inf and +inf (Ho et al. 2020, L_0), in float64."""
    level = quantize(x).double()
    low = torch.where(level > 0, level * BIN_WIDTH - 1.0, torch.full_like(level, -math.inf))
    high = torch.where(level < LEVELS - 1, (level + 1) * BIN_WIDTH - 1.0, torch.full_like(level, math.inf))
    return log_normal_mass(low, high, mean.double(), std.double())


def vlb_bpd(model, sde, x, *, steps, generator=None, grid="uniform", progress=False):
    """The per-pixel variational bound (Appendix D) in bits/dim, with its terms:

        L_T = KL(q(x_1 | x0) || N(0, I)),
        L_{t->s} = KL(q(x_s | x_t, x0) || p(x_s | x_t))  at one x_t ~ q(x_t | x0) per step,
        L_0 = -log P(x0 | x_{t_1}),  a Gaussian N(x0_hat, sigma(x0_hat, t_1)^2 / a(t_1)^2)
              discretised to the 256 bins.

    q takes its sigmas at the edges of the true x0, p at those of x0_hat.
    """
    check_images(x)
    x0 = quantize(x) * 2.0 / (LEVELS - 1) - 1.0
    nats_to_bpd = 1.0 / (x0[0].numel() * math.log(2))
    ts = time_grid(grid, steps, 1.0, 0.0, sde=sde, device=x.device, dtype=x.dtype)
    true_edges = sde.edge_map(x0)

    def sample_q(t):
        std = sde.std_from_edges(true_edges, t)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return sde.signal_coef(t) * x0 + std * eps

    def per_sample(pixels):
        return pixels.flatten(1).sum(1).double()

    one = ts[0]
    prior_std = sde.std_from_edges(true_edges, one).expand_as(x0)
    prior = per_sample(gaussian_kl(sde.signal_coef(one) * x0, prior_std.square(), torch.zeros_like(x0), torch.ones_like(x0)))
    kl_steps = []
    with torch.no_grad():
        for i in tqdm(range(len(ts) - 2), desc="bound", disable=not progress, leave=False):
            t, s = ts[i], ts[i + 1]
            x_t = sample_q(t)
            d = denoise(model, sde, x_t, t)
            mean_q, var_q = sde.posterior(x_t, x0, t, s, true_edges)
            mean_p, var_p = sde.posterior(x_t, d.x0, t, s, d.edges)
            kl_steps.append(per_sample(gaussian_kl(mean_q, var_q, mean_p, var_p)))
        t1 = ts[-2]
        d = denoise(model, sde, sample_q(t1), t1)
        decoder = -per_sample(decoder_log_likelihood(x0, d.x0, d.std / sde.signal_coef(t1)))
    kl_per_step = torch.stack(kl_steps, dim=1) if kl_steps else torch.zeros(len(x0), 0, dtype=torch.float64, device=x.device)
    terms = {"prior": prior * nats_to_bpd, "kl": kl_per_step.sum(1) * nats_to_bpd, "decoder": decoder * nats_to_bpd,
             "kl_per_step": kl_per_step * nats_to_bpd}
    return BoundResult(terms["prior"] + terms["kl"] + terms["decoder"], terms, ts)
