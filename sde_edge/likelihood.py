"""Likelihoods in bits per dimension (paper_appendix/math.md, section 6): the probability-flow ODE and the
per-coordinate variational bound (the paper's Appendix D, written out in paper_appendix/D_bound.md).

Data lives on 256 levels scaled to [-1, 1]: level k is the bin [2k/256 - 1, 2(k+1)/256 - 1),
whose lattice point is 2k/255 - 1 (what ``x * 127.5 + 127.5`` rounds back to k).
"""
import math
import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from sde_edge.odeint import integrate
from sde_edge.reverse import ReverseProcess
from sde_edge.sampling.grids import time_grid
from sde_edge.score import Denoiser
from sde_edge.tensors import check_data_range

LEVELS = 256
BIN_WIDTH = 2.0 / LEVELS
# A bin is 2/256 = 2^-7 wide per dimension, so -log2 P(bin) = -log2 p(x) + 7 per dimension.
BPD_OFFSET = -math.log2(BIN_WIDTH)
MAX_EXACT_DIMS = 1024
TRACES = ("hutchinson", "exact")
PROBES = ("rademacher", "gaussian")


def quantize(x):
    """The level k in {0, ..., 255} of each pixel of x in [-1, 1]."""
    return torch.round((x + 1.0) * (LEVELS - 1) / 2.0).clamp(0, LEVELS - 1)


def snap_to_lattice(x):
    """x in [-1, 1] moved to the nearest of the 256 lattice points 2k/255 - 1."""
    return quantize(x) * 2.0 / (LEVELS - 1) - 1.0


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
    z: torch.Tensor  # the latent at t = 1 (pixels)
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
            generator=None, max_nfe=20_000, method="RK45", progress=False, latent=False):
    """-log p(x) in bits/dim under the probability-flow ODE: log p_0(x) = log N(y_1; 0, I) +
    integral_{t_eps}^1 div F dt, with F the ODE drift in the process's coordinates y = U^T x
    (exact trace or Hutchinson-Skilling; U is orthonormal, so no Jacobian term).

    ``latent=True``: x are a first stage's scaled latents, not 8-bit pixels: no dequantisation and no
    change of units to [0, 256); the result is bits per latent dimension of their continuous density,
    which is not a pixel likelihood (it leaves out the decoder) and can be negative.

    Samples must not interact: ``edge_norm='batch'`` is refused (its edge map couples the batch).
    """
    if not latent:
        check_data_range(x)
    sde.check_continuous()
    if trace not in TRACES or probe not in PROBES:
        raise ValueError(f"trace must be one of {TRACES} and probe one of {PROBES}, got {trace!r}, {probe!r}")
    if sde.config.get("process", "edge") == "edge" and sde.config.edge_norm == "batch":
        raise ValueError("diffusion.edge_norm='batch' makes each image's noise depend on the batch; "
                         "likelihoods need edge_norm='image'")
    dims = x[0].numel()
    if trace == "exact" and dims > MAX_EXACT_DIMS:
        raise ValueError(f"trace='exact' costs one backward pass per dimension; D = {dims} > {MAX_EXACT_DIMS}: "
                         "use trace='hutchinson'")
    dequantize = dequantize and not latent
    if not dequantize and not latent:
        warnings.warn("dequantize=False: this is the bpd of a continuous density at discrete data points, "
                      "which is not a bound on the discrete NLL and can be negative", stacklevel=2)
    start = sde.to_basis(uniform_dequantize(x, generator) if dequantize else x)
    probes = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if probe == "rademacher":
        probes = probes.sign()
    reverse = ReverseProcess(Denoiser(model, sde), probability_flow=True)

    def rhs(state, t):
        with torch.enable_grad():
            xt = state[:, :dims].reshape(x.shape).detach().requires_grad_(True)
            drift = reverse.step(xt, t).drift
            divergence = _divergence(drift, xt, trace, probes)
        return torch.cat([drift.detach().flatten(1), divergence.detach()[:, None]], dim=1)

    state = torch.cat([start.flatten(1), torch.zeros_like(start[:, :1, 0, 0])], dim=1)
    end, nfe, _ = integrate(rhs, state, sde.t_eps, 1.0, rtol=rtol, atol=atol, method=method, max_nfe=max_nfe,
                         progress=progress, desc="ode likelihood")
    z = end[:, :dims].reshape(x.shape)
    prior_logp = sde.prior_logp(z)
    log_likelihood = prior_logp + end[:, dims]
    offset = 0.0 if latent else BPD_OFFSET
    return ODELikelihood(-log_likelihood / (dims * math.log(2)) + offset, log_likelihood, prior_logp, end[:, dims],
                         sde.from_basis(z), nfe)


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
    """The per-coordinate variational bound (Appendix D) in bits/dim, with its terms:

        L_T = KL(q(y_1 | x0) || N(0, I)),
        L_{t->s} = KL(q(y_s | y_t, x0) || p(y_s | y_t))  at one y_t ~ q(y_t | x0) per step,
        L_0 = -log P(x0 | y_{t_1}),  a Gaussian N(x0_hat, diag of U (s^2 / alpha^2) U^T) at
              t_1, discretised per pixel to the 256 bins (for the pixel basis: s(x0_hat, t_1) / a(t_1)).

    q takes its noise levels at the true x0, p at x0_hat; y = U^T x are the process's coordinates.
    """
    check_data_range(x)
    x0 = snap_to_lattice(x)
    y0 = sde.to_basis(x0)
    nats_to_bpd = 1.0 / (x0[0].numel() * math.log(2))
    ts = time_grid(grid, steps, 1.0, 0.0, sde=sde, device=x.device, dtype=x.dtype)
    true_statistic = sde.noise_statistic(x0)
    denoiser = Denoiser(model, sde)

    def sample_q(t):
        std = sde.noise_std(true_statistic, t, y0)
        eps = torch.randn(y0.shape, generator=generator, device=y0.device, dtype=y0.dtype)
        return sde.alpha(t, y0) * y0 + std * eps

    def per_sample(values):
        return values.flatten(1).sum(1).double()

    one = ts[0]
    prior_std = sde.noise_std(true_statistic, one, y0).expand_as(y0)
    prior = per_sample(
        gaussian_kl(sde.alpha(one, y0) * y0, prior_std.square(), torch.zeros_like(y0), torch.ones_like(y0))
    )
    kl_steps = []
    with torch.no_grad():
        for i in tqdm(range(len(ts) - 2), desc="bound", disable=not progress, leave=False):
            t, s = ts[i], ts[i + 1]
            y_t = sample_q(t)
            d = denoiser(y_t, t)
            mean_q, var_q = sde.posterior(y_t, y0, t, s, true_statistic)
            mean_p, var_p = sde.posterior(y_t, d.x0, t, s, d.statistic)
            kl_steps.append(per_sample(gaussian_kl(mean_q, var_q, mean_p, var_p)))
        t1 = ts[-2]
        d = denoiser(sample_q(t1), t1)
        pixel_std = sde.basis.pixel_variance((d.std / sde.alpha(t1, y0)).square().expand_as(y0)).sqrt()
        decoder = -per_sample(decoder_log_likelihood(x0, d.image, pixel_std))
    kl_per_step = (
        torch.stack(kl_steps, dim=1) if kl_steps else torch.zeros(len(x0), 0, dtype=torch.float64, device=x.device)
    )
    terms = {"prior": prior * nats_to_bpd, "kl": kl_per_step.sum(1) * nats_to_bpd, "decoder": decoder * nats_to_bpd,
             "kl_per_step": kl_per_step * nats_to_bpd}
    return BoundResult(terms["prior"] + terms["kl"] + terms["decoder"], terms, ts)
