"""Network output -> (x0_hat, score, sigma(x0_hat, t)): the one place that does it (SPEC sections 4 and 8).

A *model* is any callable ``model(x, t)`` (t a (B,) tensor in [0, 1]) with an
attribute ``parameterization``:

* ``scaled_eps``: the output is n = sigma(x0, t) * eps, so x0_hat = (x - n) / a(t);
* ``x0``: the output is x0_hat, so n = x - a(t) x0_hat.

Either way the score is -n / sigma(x0_hat, t)^2, per pixel.
"""
from dataclasses import dataclass

import torch

from sde_edge.config import PARAMETERIZATIONS
from sde_edge.sde import time_like


@dataclass
class Denoised:
    output: torch.Tensor  # the model's raw output
    x0: torch.Tensor  # x0_hat
    noise: torch.Tensor  # n_hat = x - a(t) x0_hat
    score: torch.Tensor  # -n_hat / sigma(x0_hat, t)^2
    std: torch.Tensor  # sigma(x0_hat, t), shaped like x
    edges: torch.Tensor  # e(x0_hat), (B, 1, H, W), so callers can get G^2 without a second Sobel


def parameterization_of(model):
    name = getattr(model, "parameterization", None)
    if name not in PARAMETERIZATIONS:
        raise ValueError(
            f"model.parameterization must be one of {PARAMETERIZATIONS}, got {name!r}; "
            "wrap a bare network so that it carries the value of config.model.parameterization"
        )
    return name


def noise_and_x0(output, sde, x, t, parameterization):
    """(n_hat, x0_hat) from a model output at (x, t), with x = a(t) x0_hat + n_hat; t (B, 1, 1, 1)."""
    a = sde.signal_coef(t)
    if parameterization == "scaled_eps":
        return output, (x - output) / a
    return x - a * output, output


def output_to_denoised(output, sde, x, t, parameterization):
    """Interpret a model output already computed at (x, t)."""
    t = time_like(t, x)
    noise, x0 = noise_and_x0(output, sde, x, t, parameterization)
    edges = sde.edge_map(x0)
    std = sde.std_from_edges(edges, t).expand_as(x)
    return Denoised(output, x0, noise, -noise / std.square(), std, edges)


def denoise(model, sde, x, t):
    """Evaluate ``model`` once at (x, t) and return x0_hat, the score and sigma(x0_hat, t)."""
    t = time_like(t, x)
    output = model(x, t.reshape(-1))
    if output.shape != x.shape:
        raise ValueError(f"the model returned shape {tuple(output.shape)} for input shape {tuple(x.shape)}")
    return output_to_denoised(output, sde, x, t, parameterization_of(model))
